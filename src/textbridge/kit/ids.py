"""Public identifiers: time-ordered ULIDs, so ids sort by creation and serve as cursors."""

from __future__ import annotations

from datetime import datetime

from ulid import ULID


def new_id() -> str:
    return str(ULID())


def id_floor(moment: datetime) -> str:
    """The smallest id that can have been made at ``moment`` (for time-range queries on ids)."""
    return str(ULID.from_timestamp(moment.timestamp()))[:10] + "0" * 16


def id_ceiling(moment: datetime) -> str:
    return str(ULID.from_timestamp(moment.timestamp()))[:10] + "Z" * 16
