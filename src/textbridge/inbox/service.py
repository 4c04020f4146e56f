"""The inbox: every phone an account exchanged messages with, latest first, with its contact
and how many inbound messages are unread. Replying is sending to that phone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal
from textbridge.contacts.service import clean_phone
from textbridge.errors import NotFound
from textbridge.inbox.repository import ConversationRepository
from textbridge.messages.repository import MessageFilter
from textbridge.messages.service import messages
from textbridge.models import Contact, Conversation, Message


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: Conversation
    contact: Contact | None


class InboxService:
    async def conversations(
        self,
        session: AsyncSession,
        caller: Principal,
        *,
        unread_only: bool = False,
        before: str | None,
        limit: int,
    ) -> list[ConversationView]:
        rows = await ConversationRepository(session).search(
            caller.account_id, unread_only=unread_only, before=before, limit=limit
        )
        return [ConversationView(conversation, contact) for conversation, contact in rows]

    async def conversation(
        self, session: AsyncSession, caller: Principal, phone: str
    ) -> ConversationView:
        e164 = clean_phone(phone).e164
        row = await ConversationRepository(session).get(caller.account_id, e164)
        if row is None:
            raise NotFound(f"no conversation with {e164}", field="phone")
        return ConversationView(*row)

    async def messages(
        self,
        session: AsyncSession,
        caller: Principal,
        phone: str,
        *,
        before: str | None,
        limit: int,
    ) -> Sequence[Message]:
        """Both directions, newest first."""
        view = await self.conversation(session, caller, phone)
        return await messages.search(
            session,
            caller,
            MessageFilter(phone=view.conversation.phone, before=before),
            limit=limit,
        )

    async def mark_read(
        self, session: AsyncSession, caller: Principal, phone: str
    ) -> ConversationView:
        view = await self.conversation(session, caller, phone)
        await ConversationRepository(session).mark_read(caller.account_id, view.conversation.phone)
        return await self.conversation(session, caller, phone)


inbox = InboxService()
