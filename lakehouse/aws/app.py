"""The ASGI app of the ``aws`` service: one route that finds the operation a signed
request calls, checks it against botocore's model, runs its handler and answers in the
service's protocol (AWS JSON 1.1 for Athena and Glue, REST-JSON for Lake Formation)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lakehouse.aws import auth, models
from lakehouse.aws.errors import AwsError, invalid_input
from lakehouse.aws.registry import Call, load_operations
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse.aws")
HEALTH_PATH = "/_lakehouse/health"
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


def create_app(settings: Settings) -> Starlette:
    """The app serving every registered operation for the stack of ``settings``."""
    handlers = load_operations()

    async def health(request: Request) -> Response:
        implemented: dict[str, list[str]] = {}
        for service, name in sorted(handlers):
            implemented.setdefault(service, []).append(name)
        return JSONResponse({"status": "ok", "services": implemented})

    async def dispatch(request: Request) -> Response:
        body = await request.body()
        request_id = str(uuid.uuid4())
        try:
            answer, content_type = await run_in_threadpool(_answer, settings, request, body)
        except AwsError as exc:
            return _error(exc, request_id)
        except Exception as exc:  # outside a handler (signature, model): still AWS's JSON
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(AwsError("InternalServerException", f"{type(exc).__name__}: {exc}",
                                   status=500), request_id)  # fmt: skip
        return Response(json.dumps(answer), media_type=content_type,
                        headers={"x-amzn-RequestId": request_id})  # fmt: skip

    routes = [Route(HEALTH_PATH, health, methods=["GET"]),
              Route("/{path:path}", dispatch, methods=METHODS)]  # fmt: skip
    return Starlette(routes=routes)


def _answer(settings: Settings, request: Request, body: bytes) -> tuple[dict[str, Any], str]:
    """(output, content type) of one request; raises AwsError for every refusal."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    query = request.url.query
    url = f"{request.url.scheme}://{headers.get('host', '')}{raw_path}" + (
        f"?{query}" if query else ""
    )
    signer = auth.verify(settings, request.method, url, dict(request.headers), body)
    op, path_params = models.operation_of(request.method, request.url.path, headers, signer.service)
    service = op.service_model.signing_name or op.service_model.service_name
    if signer.service != service:
        raise AwsError("InvalidSignatureException",
                       f"Credential should be scoped to correct service: '{service}'.", status=403)  # fmt: skip
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise AwsError("SerializationException", f"The request body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object.")
    params = models.parse_input(op, payload, path_params)
    handler = load_operations().get((service, op.name))
    if handler is None:
        raise AwsError("UnsupportedOperation",
                       f"lakehouse does not implement {service} {op.name}.", status=501)  # fmt: skip
    call = Call(settings, service, op.name, signer.principal, signer.region)
    try:
        result = handler(call, params)
    except AwsError:
        raise
    except LakehouseError as exc:
        raise invalid_input(service, str(exc)) from exc
    except Exception as exc:  # a bug of lakehouse's: said, logged, never a hang
        log.exception("%s %s failed", service, op.name)
        raise AwsError(
            "InternalServerException", f"{type(exc).__name__}: {exc}", status=500
        ) from exc
    finally:
        call.close()
    content_type = (
        "application/x-amz-json-1.1" if op.service_model.protocol == "json" else "application/json"
    )
    return models.serialize_output(op, result), content_type


def _error(exc: AwsError, request_id: str) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status,
                        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": exc.code})  # fmt: skip
