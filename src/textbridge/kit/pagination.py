"""Opaque cursors for keyset pagination over time-ordered ids."""

from __future__ import annotations

import base64


class InvalidCursor(ValueError):
    pass


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError as exc:  # not base64 (or not ASCII at all), or not UTF-8 inside
        raise InvalidCursor(cursor) from exc
    if not value.isalnum() or len(value) > 64:
        raise InvalidCursor(cursor)
    return value
