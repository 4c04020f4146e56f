"""One renderer for every error, in the native shape ``{"error": {"code", "message", "field"}}``.

Dialects register their own renderer for their path prefix, so a client of theirs gets errors
in the shape it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from textbridge.db.engine import UNAVAILABLE_KINDS, unavailable
from textbridge.errors import DatabaseUnavailable, TextbridgeError, ValidationFailed

log = structlog.get_logger(__name__)

ErrorRenderer = Callable[[TextbridgeError], Response]

_HTTP_CODES = {
    400: "validation_error",  # FastAPI's "error parsing the body" (e.g. JSON nested too deep)
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


def render(request: Request, error: TextbridgeError) -> Response:
    """An error in the shape the caller's API speaks (native, or a dialect's), with the
    headers the error carries (``Retry-After``) whatever the shape."""
    response = _renderer(request)(error)
    response.headers.update(error.headers)
    return response


def from_validation(exc: RequestValidationError) -> ValidationFailed:
    """The first problem pydantic found, with a dotted field path (``to[2]``, ``text``)."""
    errors: list[dict[str, Any]] = list(exc.errors())
    if not errors:
        return ValidationFailed("invalid request")
    first = _most_relevant(errors)
    field = _field_path(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ValidationFailed("the body is not valid JSON")
    if kind == "missing":
        if not field:
            return ValidationFailed("the body must be a JSON object; it is empty")
        return ValidationFailed(f"{field} is required", field=field)
    if kind == "extra_forbidden":
        return ValidationFailed(f"{field} is not a known field", field=field or None)
    if kind in ("model_type", "model_attributes_type") and not field:
        return ValidationFailed("the body must be a JSON object")
    message = str(first.get("msg", "invalid value"))
    return ValidationFailed(f"{field}: {message}" if field else message, field=field or None)


# How pydantic names the branches of a union in an error location ("str", "constrained-str",
# "list[constrained-str]", "function-after[...]"): not field names, so left out of the path.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_BARE_TAGS = frozenset({"str", "int", "float", "bool", "bytes", "none", "decimal", "list", "dict"})
_TAG_PREFIXES = ("constrained-", "function-", "lax-or-strict", "json-or-python", "nullable")


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (
        part in _BARE_TAGS or "[" in part or part.startswith(_TAG_PREFIXES)
    )


def _field_path(loc: Sequence[Any]) -> str:
    # The first part says where the value came from (body, query, path, header): not a field.
    location = list(loc[1:]) if loc and loc[0] in _SOURCES else list(loc)
    field = ""
    for part in location:
        if _is_union_tag(part):
            continue
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field


def _most_relevant(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """A union reports one error per branch. A branch whose type did not match at all ("a
    valid string" for a list) says less than a sibling branch that matched and then failed
    inside (an item of the list, its length): prefer that one."""
    first = errors[0]
    if not _wrong_branch(first):
        return first
    union = tuple(first.get("loc", ()))[:-1]
    for error in errors[1:]:
        loc = tuple(error.get("loc", ()))
        sibling = len(loc) > len(union) and loc[: len(union)] == union
        if sibling and _is_union_tag(loc[len(union)]) and not _wrong_branch(error):
            return error
    return first


def _wrong_branch(error: dict[str, Any]) -> bool:
    loc = error.get("loc", ())
    return bool(loc) and _is_union_tag(loc[-1]) and str(error.get("type", "")).endswith("_type")


def install(app: FastAPI) -> None:
    @app.exception_handler(TextbridgeError)
    async def _expected(request: Request, exc: TextbridgeError) -> Response:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return render(request, from_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        error = TextbridgeError(str(exc.detail))
        error.status_code = exc.status_code  # type: ignore[misc]
        error.code = _HTTP_CODES.get(exc.status_code, "http_error")  # type: ignore[misc]
        return render(request, error)

    async def _database(request: Request, exc: Exception) -> Response:
        if not unavailable(exc):
            return await _bug(request, exc)
        # Not a bug: the database is down, full or silent. Handled here rather than by the
        # catch-all below, whose middleware raises the error again after answering.
        log.warning(
            "database unavailable",
            path=request.url.path,
            method=request.method,
            reason=f"{type(exc).__name__}: {exc}"[:200],
        )
        return render(request, DatabaseUnavailable())

    for kind in UNAVAILABLE_KINDS:
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return render(request, InternalError("internal error"))


class HangUps:
    """Pure ASGI middleware, outermost: a client that hung up before its request was read
    (or, on a server speaking ASGI 2.4, before its answer was written) is no error of ours.
    Starlette raises ``ClientDisconnect`` for both; without this it reached the handler above
    as an "unhandled error" and uvicorn printed its traceback again. Nobody is left to answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.debug("client hung up", path=scope.get("path"), method=scope.get("method"))
