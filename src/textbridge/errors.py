"""The one error root. Every expected failure is a ``TextbridgeError`` carrying its HTTP status.

The native API renders it as ``{"error": {"code", "message", "field"}}``; dialects translate it
into their own shapes. Anything else that escapes a request is a bug and becomes a 500.
"""

from __future__ import annotations

from typing import ClassVar


class TextbridgeError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries (``Retry-After``...)."""
        return {}

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationFailed(TextbridgeError):
    code = "validation_error"


class MalformedRequest(TextbridgeError):
    """The request cannot be read (a string in its body is not Unicode text), as opposed to a
    value read and refused: a 400 in every dialect, even one that answers a refused value with
    a 200 (TextLink's "message sending failed")."""

    code = "validation_error"


class Unauthorized(TextbridgeError):
    status_code = 401
    code = "unauthorized"


class Forbidden(TextbridgeError):
    status_code = 403
    code = "forbidden"


class NotFound(TextbridgeError):
    status_code = 404
    code = "not_found"


class Conflict(TextbridgeError):
    status_code = 409
    code = "conflict"


class InsufficientBalance(TextbridgeError):
    status_code = 402
    code = "insufficient_balance"


class PayloadTooLarge(TextbridgeError):
    status_code = 413
    code = "payload_too_large"


class IdempotencyMismatch(TextbridgeError):
    status_code = 422
    code = "idempotency_key_reused"


class TooManyRequests(TextbridgeError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class DatabaseUnavailable(TextbridgeError):
    """The database could not be reached or written in time: nothing was written; the caller
    may try again (``Retry-After``)."""

    status_code = 503
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__("the database is unavailable right now; nothing was changed, try again")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}
