"""Errors the AWS APIs answer with: AWS's own error codes, as its JSON protocols send them."""

from __future__ import annotations

from typing import Any

# What each service calls a request that does not fit its model (botocore's
# exception shapes of that service; AWS answers HTTP 400 with it).
INVALID_INPUT_CODE = {
    "athena": "InvalidRequestException",
    "glue": "InvalidInputException",
    "lakeformation": "InvalidInputException",
}


class AwsError(Exception):
    """An AWS error response: ``code`` (``__type``), ``message`` and the HTTP ``status``.

    ``fields`` adds members of the error's shape (Athena's ``AthenaErrorCode``)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.fields = code, message, status, fields

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, "Message": self.message,
                **self.fields}  # fmt: skip


def invalid_input(service: str, message: str) -> AwsError:
    """The service's own "your request is wrong" error (400)."""
    return AwsError(INVALID_INPUT_CODE.get(service, "ValidationException"), message)


def not_found(service: str, message: str) -> AwsError:
    """The service's own "no such thing" error (400, as AWS answers it)."""
    code = "InvalidRequestException" if service == "athena" else "EntityNotFoundException"
    return AwsError(code, message)
