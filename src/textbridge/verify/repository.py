"""All SQL for verifications. Checking a code counts the attempt and compares the count in one
conditional UPDATE, so parallel guesses can never get more tries than allowed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Verification, VerificationStatus

# Core table for the updates: the ORM's UPDATE would also walk the session's identity map to
# keep loaded objects in step, which doubled the cost of a check.
_TABLE = cast(Table, Verification.__table__)


class VerificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, verification: Verification) -> None:
        self.session.add(verification)

    async def get(self, account_id: str, verification_id: str) -> Verification | None:
        result = await self.session.execute(
            select(Verification).where(
                Verification.id == verification_id, Verification.account_id == account_id
            )
        )
        return self._detached(result.scalar_one_or_none())

    def _detached(self, verification: Verification | None) -> Verification | None:
        """Loaded objects are snapshots: every change goes through the conditional UPDATEs
        below, so the unit of work must not write the snapshot back at commit."""
        if verification is not None:
            self.session.expunge(verification)
        return verification

    async def latest(self, account_id: str, phone: str, service: str | None) -> Verification | None:
        """The newest verification of this phone for this service (any service: ``None``)."""
        query = select(Verification).where(
            Verification.account_id == account_id, Verification.phone == phone
        )
        if service is not None:
            query = query.where(Verification.service == service)
        result = await self.session.execute(query.order_by(Verification.id.desc()).limit(1))
        return self._detached(result.scalar_one_or_none())

    async def take_attempt(
        self, verification_id: str, *, now: datetime, max_checks: int
    ) -> Row[int, str] | None:
        """Count one check if the verification is pending, unexpired and under its limit;
        answers the new count and what the check needs, or ``None`` if no check is allowed."""
        result = await self.session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.id == verification_id,
                _TABLE.c.status == VerificationStatus.PENDING,
                _TABLE.c.attempts < max_checks,
                _TABLE.c.expires_at > now,
            )
            .values(attempts=_TABLE.c.attempts + 1)
            .returning(_TABLE.c.attempts, _TABLE.c.code_hmac)
        )
        return result.one_or_none()

    async def set_status(
        self,
        verification_id: str,
        status: VerificationStatus,
        *,
        now: datetime,
        only_if: VerificationStatus = VerificationStatus.PENDING,
    ) -> bool:
        values: dict[str, Any] = {"status": status}
        if status is VerificationStatus.APPROVED:
            values["approved_at"] = now
        result = await self.session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == verification_id, _TABLE.c.status == only_if)
            .values(**values)
            .returning(_TABLE.c.id)
        )
        return result.first() is not None

    async def record_send(self, verification_id: str, *, message_id: str, now: datetime) -> None:
        await self.session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == verification_id)
            .values(sends=_TABLE.c.sends + 1, last_message_id=message_id, last_sent_at=now)
        )
