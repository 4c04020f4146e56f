"""Every feature's router is made here, so they all parse bodies the same way."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from textbridge.errors import MalformedRequest

# Python's JSON reader turns a lone "\ud800" escape (or the UTF-8 bytes of a surrogate, which
# it decodes with "surrogatepass") into a str that no database can store and no UTF-8 encoder
# writes: a 500 wherever it reached a query. pydantic refuses one only in a field with a length
# limit, so a rule per field missed the fields without one (the dialects' ``text``, ``tag``).
# The same for a NUL ("\u0000"), which PostgreSQL cannot store in text. A body that cannot
# hold either (nearly all) is told by this search alone; only the others are parsed here,
# once, for FastAPI to use.
_MAY_BE_UNSTORABLE = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]|\\u0000")
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


class _Route(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            if _MAY_BE_UNSTORABLE.search(await request.body()):
                try:
                    body = await request.json()  # kept by the request: FastAPI reads it again
                except (ValueError, RecursionError):
                    body = None  # not JSON: FastAPI answers that as it always does
                found = _unstorable(body)
                if found is not None:
                    field, text = found
                    where = field or "the body"
                    if "\x00" in text:
                        raise MalformedRequest(
                            f"{where} must not contain NUL characters", field=field or None
                        )
                    raise MalformedRequest(
                        f"{where} is not valid Unicode: it has a lone UTF-16 surrogate "
                        "(a \\ud800-\\udfff escape that is not half of a pair)",
                        field=field or None,
                    )
            return await handler(request)

        return checked


def _unstorable(body: object) -> tuple[str, str] | None:
    """Where the first string holding a lone surrogate or a NUL is (``text``, ``to[2]``,
    ``fields.city``; ``""`` for the body itself), with that string; ``None`` when there is
    none. A loop, not recursion: the body may be nested as deep as the JSON reader allows."""
    pending: list[tuple[object, str]] = [(body, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return path, value
        elif isinstance(value, dict):
            for key in value:
                if _UNSTORABLE.search(key):
                    return path, key  # a key cannot be named: the object holding it is
            items = [(item, f"{path}.{key}" if path else key) for key, item in value.items()]
            pending.extend(reversed(items))
        elif isinstance(value, list):
            pending.extend(reversed([(item, f"{path}[{i}]") for i, item in enumerate(value)]))
    return None


def make_router(**kwargs: Any) -> APIRouter:
    # Clients of the seed services often send JSON without (or with a wrong) Content-Type;
    # the body is parsed as JSON regardless.
    return APIRouter(strict_content_type=False, route_class=_Route, **kwargs)
