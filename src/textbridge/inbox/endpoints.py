"""Native API: conversations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from textbridge.api.deps import CallerDep, SessionDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.inbox.service import ConversationView, inbox
from textbridge.kit.pagination import encode_cursor
from textbridge.messages.schemas import MessageOut, MessagePage
from textbridge.models import Direction

router = make_router(prefix="/v1/conversations", tags=["conversations"])


class ConversationContact(BaseModel):
    id: str
    name: str | None
    tag: str | None
    opted_out: bool


class ConversationOut(BaseModel):
    phone: str
    contact: ConversationContact | None
    unread: int
    last_message_id: str
    last_direction: Direction
    last_text: str
    last_message_at: datetime

    @classmethod
    def of(cls, view: ConversationView) -> ConversationOut:
        conversation, contact = view.conversation, view.contact
        return cls(
            phone=conversation.phone,
            contact=None
            if contact is None
            else ConversationContact(
                id=contact.id,
                name=contact.name,
                tag=contact.tag,
                opted_out=contact.opted_out_at is not None,
            ),
            unread=conversation.unread,
            last_message_id=conversation.last_message_id,
            last_direction=Direction(conversation.last_direction),
            last_text=conversation.last_text,
            last_message_at=conversation.last_message_at,
        )


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None


@router.get("", response_model=ConversationPage)
async def list_conversations(
    session: SessionDep, caller: CallerDep, page: PageDep, unread: bool = False
) -> ConversationPage:
    """Every phone the account exchanged messages with, latest first; ``unread=true`` keeps
    those with unread inbound messages."""
    views = await inbox.conversations(
        session, caller, unread_only=unread, before=page.before, limit=page.fetch
    )
    more = len(views) > page.limit
    return ConversationPage(
        data=[ConversationOut.of(view) for view in views[: page.limit]],
        next_cursor=encode_cursor(views[page.limit - 1].conversation.last_message_id)
        if more
        else None,
    )


@router.get("/{phone}", response_model=ConversationOut)
async def get_conversation(phone: str, session: SessionDep, caller: CallerDep) -> ConversationOut:
    return ConversationOut.of(await inbox.conversation(session, caller, phone))


@router.get("/{phone}/messages", response_model=MessagePage, response_model_by_alias=True)
async def conversation_messages(
    phone: str, session: SessionDep, caller: CallerDep, page: PageDep
) -> MessagePage:
    """Both directions, newest first. To reply, send to this phone."""
    found = await inbox.messages(session, caller, phone, before=page.before, limit=page.fetch)
    return MessagePage(
        data=[MessageOut.of(message) for message in found[: page.limit]],
        next_cursor=page.next_cursor(found),
    )


@router.post("/{phone}/read", response_model=ConversationOut)
async def mark_read(phone: str, session: SessionDep, caller: CallerDep) -> ConversationOut:
    """Mark the conversation's inbound messages read."""
    return ConversationOut.of(await inbox.mark_read(session, caller, phone))
