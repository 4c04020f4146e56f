"""Public identifiers: time-ordered ULIDs, so ids sort by creation and serve as cursors."""

from __future__ import annotations

from datetime import datetime

from ulid import ULID


def new_id() -> str:
    return str(ULID())


def id_floor(moment: datetime) -> str:
    """The smallest id that can have been made at ``moment`` (for time-range queries on ids)."""
    return _time_part(moment) + "0" * 16


def id_ceiling(moment: datetime) -> str:
    return _time_part(moment) + "Z" * 16


def _time_part(moment: datetime) -> str:
    # ULIDs start at the Unix epoch: any earlier moment is before every id.
    return str(ULID.from_timestamp(max(0.0, moment.timestamp())))[:10]
