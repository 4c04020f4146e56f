"""Notices: what an account is told by email, written in the transaction of what happened
(so none is lost to a crash) and sent by the mailer, at most one email per account per
``NOTICE_INTERVAL_SECONDS``, each listing what came up since the last one."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.schemas import settings_of
from textbridge.accounts.service import accounts
from textbridge.db import Database
from textbridge.db.engine import log_failure
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.models import Notice
from textbridge.notices.repository import NoticeRepository
from textbridge.settings import Settings, SmtpSecurity

log = structlog.get_logger(__name__)

_LISTED = 50  # notices written out in one email; the rest are counted


def notify(
    session: AsyncSession, settings: Settings, account_id: str, kind: str, text: str
) -> None:
    """Tell the account ``text`` by email, in the session's transaction. Without SMTP there
    is nobody to send it: nothing is written (the webhook's delivery log has it all)."""
    if settings.smtp_host:
        NoticeRepository(session).add(
            Notice(
                id=new_id(),
                account_id=account_id,
                kind=kind,
                text=text[:1000],
                created_at=utcnow(),
            )
        )


class Mailer:
    """Sends the notices, grouped per account, when SMTP is configured."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def run(self) -> None:
        while True:
            try:
                await self.send_once()
            except Exception as exc:
                log_failure(log, "sending notices failed", exc)
            await asyncio.sleep(self.settings.notice_poll_seconds)

    async def send_once(self) -> int:
        """Emails sent."""
        now = utcnow()
        quiet = timedelta(seconds=self.settings.notice_interval_seconds)

        async def due(session: AsyncSession) -> list[tuple[str | None, list[Notice]]]:
            repository = NoticeRepository(session)
            waiting: dict[str, list[Notice]] = defaultdict(list)
            for notice in await repository.unsent(limit=5000):
                waiting[notice.account_id].append(notice)
            last = await repository.last_sent(set(waiting))
            batches = []
            for account_id, notices in waiting.items():
                if account_id in last and now - last[account_id] < quiet:
                    continue
                account = await accounts.get(session, account_id)
                address = settings_of(account).notify_email
                batches.append((address, notices))
            return batches

        sent = 0
        for address, notices in await self.db.run(due):
            if address is not None:
                await asyncio.to_thread(self._send, address, notices)
                sent += 1
            else:
                log.info("notices not emailed: the account has no notify_email", n=len(notices))
            ids = [notice.id for notice in notices]

            async def mark(session: AsyncSession, ids: Sequence[str] = ids) -> None:
                await NoticeRepository(session).mark_sent(ids, utcnow())

            await self.db.run(mark)
        return sent

    def _send(self, address: str, notices: Sequence[Notice]) -> None:
        """Blocking: run in a thread. The standard library's SMTP client does all this needs."""
        settings = self.settings
        kinds = {notice.kind for notice in notices}
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = address
        message["Subject"] = "Textbridge: " + (
            "a webhook endpoint was disabled"
            if "webhook_disabled" in kinds
            else "webhook deliveries failed"
        )
        lines = [
            f"- {notice.created_at:%Y-%m-%d %H:%M:%S} UTC: {notice.text}" for notice in notices
        ]
        more = len(lines) - _LISTED
        body = "\n".join(lines[:_LISTED]) + (f"\n... and {more} more." if more > 0 else "")
        message.set_content(
            "Hello,\n\nThis happened to your Textbridge account:\n\n" + body + "\n\n"
            "Every delivery and its attempts are listed at GET /v1/webhooks/{id}/deliveries.\n"
        )
        with self._connect() as smtp:
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(message)

    def _connect(self) -> Any:
        settings = self.settings
        host, port = settings.smtp_host or "", settings.smtp_port
        if settings.smtp_security == SmtpSecurity.TLS:
            return smtplib.SMTP_SSL(host, port, timeout=30, context=ssl.create_default_context())
        smtp = smtplib.SMTP(host, port, timeout=30)
        if settings.smtp_security == SmtpSecurity.STARTTLS:
            smtp.starttls(context=ssl.create_default_context())
        return smtp
