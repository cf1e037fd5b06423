"""Who sent a request: its AWS Signature Version 4, checked with botocore's signer.

The stack's own key (``access_key``/``secret_key``) is the governance admin; a
principal's vended S3 key (:mod:`lakehouse.governance.s3_access`) is that principal.
A request that is unsigned, signed with an unknown key, or whose signature does not
match is refused as AWS refuses it (UnrecognizedClientException,
InvalidSignatureException, 403), so nothing unauthenticated reads or changes the lake.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lakehouse.aws.errors import AwsError
from lakehouse.config import Settings

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<sig>[0-9a-f]+)$"
)


# How far a request's X-Amz-Date may be from now, as AWS allows: a captured request
# cannot be replayed later (a DROP TABLE sent again a day after).
ALLOWED_SKEW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Signer:
    """What a valid Authorization header says: the ``principal``, ``region`` and ``service``."""

    principal: str
    region: str
    service: str


def scope_service(authorization: str | None) -> str | None:
    """The service named in the header's credential scope (None when unsigned)."""
    found = AUTHORIZATION.match(authorization or "")
    return found["service"] if found else None


def check_fresh(amz_date: str, now: dt.datetime | None = None) -> None:
    """Refuse a request signed more than :data:`ALLOWED_SKEW` from ``now`` (UTC) or
    without an ``X-Amz-Date`` (``YYYYMMDDTHHMMSSZ``), as AWS refuses it."""
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AwsError("IncompleteSignatureException",
                       f"The X-Amz-Date header '{amz_date}' is missing or not YYYYMMDDTHHMMSSZ.",
                       status=400) from None  # fmt: skip
    current = now or dt.datetime.now(dt.UTC)
    if abs(current - signed_at) > ALLOWED_SKEW:
        raise AwsError("InvalidSignatureException",
                       f"Signature expired: {amz_date} is now earlier than "
                       f"{(current - ALLOWED_SKEW):%Y%m%dT%H%M%SZ} or later than "
                       f"{(current + ALLOWED_SKEW):%Y%m%dT%H%M%SZ} (the clock may be wrong).",
                       status=403)  # fmt: skip


def keys(settings: Settings) -> dict[str, tuple[str, str]]:
    """Access key id to (secret, principal): the stack's key, then vended keys."""
    from lakehouse.governance import s3_access

    known = {settings.access_key: (settings.secret_key, settings.governance_admin)}
    for principal, pair in s3_access.issued(settings).items():
        known.setdefault(pair.access_key, (pair.secret_key, principal))
    return known


def verify(
    settings: Settings, method: str, url: str, headers: dict[str, str], body: bytes
) -> Signer:
    """The signer of a request, after recomputing its SigV4 signature.

    ``headers`` are as received (any case); ``url`` is the full URL as sent. Raises
    AwsError: MissingAuthenticationTokenException (unsigned),
    UnrecognizedClientException (unknown key), InvalidSignatureException (mismatch)."""
    lower = {k.lower(): v for k, v in headers.items()}
    found = AUTHORIZATION.match(lower.get("authorization", ""))
    if not found:
        raise AwsError("MissingAuthenticationTokenException",
                       "Request is missing Authentication Token (a SigV4 Authorization header).",
                       status=403)  # fmt: skip
    check_fresh(lower.get("x-amz-date", ""))
    known = keys(settings).get(found["key"])
    if known is None:
        raise AwsError("UnrecognizedClientException",
                       "The security token included in the request is invalid.", status=403)  # fmt: skip
    secret, principal = known
    signed = found["signed"].split(";")
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: lower.get(name, "") for name in signed})  # fmt: skip
    request.context["timestamp"] = lower.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(found["key"], secret, lower.get("x-amz-security-token")),
                       found["service"], found["region"])  # fmt: skip
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, found["sig"]):
        raise AwsError("InvalidSignatureException",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method.", status=403)  # fmt: skip
    return Signer(principal, found["region"], found["service"])
