"""One renderer for every error, in the native shape ``{"error": {"code", "message", "field"}}``.

Dialects register their own renderer for their path prefix, so a client of theirs gets errors
in the shape it knows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from textbridge.errors import TextbridgeError, ValidationFailed

log = structlog.get_logger(__name__)

ErrorRenderer = Callable[[TextbridgeError], Response]

_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class InternalError(TextbridgeError):
    status_code = 500
    code = "internal_error"


def native_error(error: TextbridgeError) -> Response:
    return Response(
        orjson.dumps({"error": error.as_dict()}),
        status_code=error.status_code,
        media_type="application/json",
    )


def _renderer(request: Request) -> ErrorRenderer:
    renderers: list[tuple[str, ErrorRenderer]] = getattr(request.app.state, "error_renderers", [])
    path = request.url.path
    for prefix, renderer in renderers:
        if path.startswith(prefix):
            return renderer
    return native_error


def from_validation(exc: RequestValidationError) -> ValidationFailed:
    """The first problem pydantic found, with a dotted field path (``to[2]``, ``text``)."""
    errors: list[dict[str, Any]] = list(exc.errors())
    if not errors:
        return ValidationFailed("invalid request")
    first = errors[0]
    location = [part for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    # pydantic reports a union's failed branch as a location part ("list[...]", "str"): drop it.
    location = [p for p in location if not (isinstance(p, str) and ("[" in p or p == "str"))]
    field = ""
    for part in location:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ValidationFailed("the body is not valid JSON")
    if kind == "missing":
        return ValidationFailed(f"{field} is required", field=field or None)
    if kind == "extra_forbidden":
        return ValidationFailed(f"{field} is not a known field", field=field or None)
    if kind in ("model_type", "model_attributes_type") and not field:
        return ValidationFailed("the body must be a JSON object")
    message = str(first.get("msg", "invalid value"))
    return ValidationFailed(f"{field}: {message}" if field else message, field=field or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(TextbridgeError)
    async def _expected(request: Request, exc: TextbridgeError) -> Response:
        return _renderer(request)(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _renderer(request)(from_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        error = TextbridgeError(str(exc.detail))
        error.status_code = exc.status_code  # type: ignore[misc]
        error.code = _HTTP_CODES.get(exc.status_code, "http_error")  # type: ignore[misc]
        return _renderer(request)(error)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return _renderer(request)(InternalError("internal error"))
