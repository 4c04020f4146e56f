"""Native API: the account's events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from textbridge.api.deps import CallerDep, SessionDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.events import service
from textbridge.events.service import EventType

router = make_router(prefix="/v1/events", tags=["events"])


class EventOut(BaseModel):
    id: str
    type: EventType
    subject_id: str
    data: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


@router.get("", response_model=EventPage)
async def list_events(
    session: SessionDep,
    caller: CallerDep,
    page: PageDep,
    type: EventType | None = None,
    subject_id: Annotated[str | None, Query(max_length=26)] = None,
) -> EventPage:
    """What happened, newest first: e.g. ``contact.tag_changed`` with the old and new tag."""
    events = await service.search(
        session,
        caller.account_id,
        type=type,
        subject_id=subject_id,
        before=page.before,
        limit=page.fetch,
    )
    return EventPage(
        data=[
            EventOut.model_validate(event, from_attributes=True) for event in events[: page.limit]
        ],
        next_cursor=page.next_cursor(events),
    )
