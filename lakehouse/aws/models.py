"""botocore's service models: which operation a request is, what it may carry, and
how an answer is written (AWS JSON 1.1 and REST-JSON, the protocols of Athena, Glue
and Lake Formation).

Nothing here is written by hand per shape: input is checked with botocore's own
``ParamValidator`` against the operation's input shape, and an answer is checked
against the output shape before it is serialized (timestamps as epoch seconds,
blobs as base64, as botocore's parsers expect them).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from functools import cache
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.session import get_session
from botocore.validate import ParamValidator

from lakehouse.aws.errors import AwsError, invalid_input

# The services answered, by their signing name (the credential scope's service).
SERVICES = ("athena", "glue", "lakeformation")


@cache
def service_model(name: str) -> ServiceModel:
    """botocore's model of ``name`` (``athena``, ``glue`` or ``lakeformation``)."""
    return get_session().get_service_model(name)


@cache
def _targets() -> dict[str, str]:
    """X-Amz-Target prefix (``AmazonAthena``) to the service's name."""
    found = {}
    for name in SERVICES:
        prefix = service_model(name).metadata.get("targetPrefix")
        if prefix:
            found[prefix] = name
    return found


@cache
def _rest_routes(name: str) -> list[tuple[str, re.Pattern[str], OperationModel]]:
    """(method, path pattern, operation) of a REST-JSON service, static paths first."""
    model = service_model(name)
    routes = []
    for op_name in model.operation_names:
        op = model.operation_model(op_name)
        uri = op.http["requestUri"].split("?")[0]
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+?\\\}", r"(?P<\1>[^/]+)", re.escape(uri))
        routes.append((op.http["method"], re.compile(f"^{pattern}$"), op))
    return sorted(routes, key=lambda route: "{" in route[2].http["requestUri"])


def operation_of(
    method: str, path: str, headers: dict[str, str], signing_service: str | None
) -> tuple[OperationModel, dict[str, str]]:
    """The operation a request calls, and the path's parameters (REST-JSON).

    ``headers`` are lower-cased. Raises AwsError (UnknownOperationException) when no
    model has it."""
    target = headers.get("x-amz-target")
    if target and "." in target:
        prefix, op_name = target.rsplit(".", 1)
        service = _targets().get(prefix)
        if service and op_name in service_model(service).operation_names:
            return service_model(service).operation_model(op_name), {}
        raise AwsError("UnknownOperationException", f"Unknown operation {target}.")
    if signing_service in SERVICES and service_model(signing_service).protocol == "rest-json":
        for verb, pattern, op in _rest_routes(signing_service):
            found = pattern.match(path)
            if verb == method and found:
                return op, found.groupdict()
    raise AwsError(
        "UnknownOperationException",
        f"No operation of {', '.join(SERVICES)} answers {method} {path}"
        + (f" (signed for {signing_service})" if signing_service else "") + ".",
    )  # fmt: skip


def parse_input(
    op: OperationModel, body: dict[str, Any], path_params: dict[str, str]
) -> dict[str, Any]:
    """The request's parameters, decoded (timestamps, blobs) and checked against the model.

    Raises AwsError with the service's invalid-input code, naming every problem."""
    shape = op.input_shape
    if shape is None:
        return {}
    service = op.service_model.signing_name or op.service_model.service_name
    try:
        params = _decode(shape, {**body, **path_params})
    except (ValueError, OverflowError, OSError) as exc:  # a timestamp out of range, bad base64
        raise invalid_input(service, f"A member of the request cannot be decoded: {exc}") from exc
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise invalid_input(service, report.generate_report())
    too_large = _above_max(shape, params, "")
    if too_large:
        count = f"{len(too_large)} validation error{'s' if len(too_large) > 1 else ''}"
        raise invalid_input(service, f"{count} detected: " + "; ".join(too_large))
    return dict(params)


def _above_max(shape: Shape, value: Any, path: str) -> list[str]:
    """AWS's errors for numbers and string lengths above their model's ``max`` (botocore's
    validator checks only ``min``; AWS refuses a MaxResults of 100000 where its model
    says 100)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return [error for name, member in shape.members.items() if name in value
                for error in _above_max(member, value[name], f"{path}.{_camel(name)}".lstrip("."))]  # fmt: skip
    if kind == "list" and isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _above_max(shape.member, v, f"{path}[{i}]")]
    largest = shape.metadata.get("max")
    numeric = kind in ("integer", "long") and isinstance(value, int)
    if numeric and isinstance(largest, int) and value > largest:
        return [f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {largest}"]  # fmt: skip
    text = kind == "string" and isinstance(value, str)
    if text and isinstance(largest, int) and len(value) > largest:  # a 300,000-char QueryString
        return [f"Value at '{path}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {largest}"]  # fmt: skip
    return []


def _camel(member: str) -> str:
    """A member's name as AWS's validation messages write it (``maxResults``)."""
    return member[:1].lower() + member[1:]


def serialize_output(op: OperationModel, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as the wire's JSON: checked against the output shape, then encoded.

    A result that does not fit the model is a bug of lakehouse's: it raises AwsError
    (InternalServerException, 500) naming the problem rather than sending it."""
    shape = op.output_shape
    if shape is None:
        return {}
    clean = _drop_none(result)
    report = ParamValidator().validate(clean, shape)
    if report.has_errors():
        raise AwsError("InternalServerException",
                       f"lakehouse answered {op.name} outside its model: {report.generate_report()}",
                       status=500)  # fmt: skip
    encoded = _encode(shape, clean)
    return encoded if isinstance(encoded, dict) else {}


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _decode(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _decode(members[k], v) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_decode(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _decode(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value, validate=True)
    return value


def _encode(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _encode(members[k], v) for k, v in value.items()}
    if kind == "list":
        return [_encode(shape.member, v) for v in value]
    if kind == "map":
        return {k: _encode(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    if kind == "blob" and isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value
