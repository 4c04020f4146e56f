"""Cursor pagination for list endpoints: ``?cursor=&limit=`` in, ``next_cursor`` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Query

from textbridge.errors import ValidationFailed
from textbridge.kit.pagination import InvalidCursor, decode_cursor, encode_cursor


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PageRequest:
    before: str | None  # the last id of the previous page
    limit: int

    @property
    def fetch(self) -> int:
        """Rows to read: one more than the page, to know whether another page follows."""
        return self.limit + 1

    def next_cursor(self, rows: Sequence[_HasId]) -> str | None:
        return encode_cursor(rows[self.limit - 1].id) if len(rows) > self.limit else None


async def page_request(
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PageRequest:
    try:
        before = decode_cursor(cursor) if cursor else None
    except InvalidCursor as exc:
        raise ValidationFailed("cursor is not one this API gave out", field="cursor") from exc
    return PageRequest(before, limit)


PageDep = Annotated[PageRequest, Depends(page_request)]
