"""The checks every request passes before any route sees it: a body no larger than the limit,
and no NUL character in the URL (PostgreSQL cannot store or compare one). Both answer in the
caller's error shape, like every other error."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textbridge.api.errors import render
from textbridge.errors import PayloadTooLarge, TextbridgeError, ValidationFailed


class RequestGuard:
    """Pure ASGI middleware (it must see the body as it streams in, before the route reads it)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max(max_upload_bytes, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        error = _url_error(scope) or _declared_size_error(scope, limit)
        if error is not None:
            await render(Request(scope, receive), error)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException, so the app's handler renders it like any other error.
                    raise HTTPException(413, _too_large(limit).message)
            return message

        await self.app(scope, receive_within_limit, send)

    def _limit(self, scope: Scope) -> int:
        """Uploads (a CSV of contacts) may be larger than any JSON request."""
        path: str = scope.get("path", "")
        return self.max_upload_bytes if path.endswith(UPLOAD_PATHS) else self.max_body_bytes


UPLOAD_PATHS = ("/v1/contacts/import",)


def _declared_size_error(scope: Scope, limit: int) -> TextbridgeError | None:
    declared = Headers(scope=scope).get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    return None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes")


def _url_error(scope: Scope) -> TextbridgeError | None:
    if "\x00" in scope.get("path", ""):
        return ValidationFailed("the URL path must not contain NUL characters")
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                field = name if "\x00" not in name else None
                return ValidationFailed(f"{name!r} must not contain NUL characters", field=field)
        if "\x00" in unquote(query.decode("latin-1")):
            return ValidationFailed("the query must not contain NUL characters")
    return None
