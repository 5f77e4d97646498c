"""Domain errors carry their HTTP status and a stable code; one handler renders them all."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class StoreloopError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body

    def headers(self) -> dict[str, str]:
        return {}


class NotFound(StoreloopError):
    status_code = 404
    code = "not_found"


class Unauthorized(StoreloopError):
    status_code = 401
    code = "unauthorized"


class Forbidden(StoreloopError):
    status_code = 403
    code = "forbidden"


class Conflict(StoreloopError):
    status_code = 409
    code = "conflict"


class ValidationFailed(StoreloopError):
    status_code = 422
    code = "validation_failed"


class PayloadTooLarge(StoreloopError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(StoreloopError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def error_document(detail: dict[str, Any]) -> dict[str, Any]:
    """The error body: ``{"error": {...}}``, with ``code`` and ``message`` repeated at the top.

    The top-level copies are what Segment-style SDKs read (RudderStack's Python client looks for
    ``code`` there and treats a body without it as a network failure to retry).
    """
    return {"error": detail, "code": detail["code"], "message": detail["message"]}


def error_body(error: StoreloopError) -> bytes:
    return orjson.dumps(error_document(error.to_dict()))
