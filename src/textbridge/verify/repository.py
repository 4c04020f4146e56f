"""All SQL for verifications. Checking a code counts the attempt and compares the count in one
conditional UPDATE, so parallel guesses can never get more tries than allowed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Verification, VerificationStatus


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
        return result.scalar_one_or_none()

    async def latest(self, account_id: str, phone: str, service: str | None) -> Verification | None:
        """The newest verification of this phone for this service (any service: ``None``)."""
        query = select(Verification).where(
            Verification.account_id == account_id, Verification.phone == phone
        )
        if service is not None:
            query = query.where(Verification.service == service)
        result = await self.session.execute(query.order_by(Verification.id.desc()).limit(1))
        return result.scalar_one_or_none()

    async def take_attempt(
        self, verification_id: str, *, now: datetime, max_checks: int
    ) -> Row[int, str] | None:
        """Count one check if the verification is pending, unexpired and under its limit;
        answers the new count and what the check needs, or ``None`` if no check is allowed."""
        result = await self.session.execute(
            update(Verification)
            .where(
                Verification.id == verification_id,
                Verification.status == VerificationStatus.PENDING,
                Verification.attempts < max_checks,
                Verification.expires_at > now,
            )
            .values(attempts=Verification.attempts + 1)
            .returning(Verification.attempts, Verification.code_hmac)
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
            update(Verification)
            .where(Verification.id == verification_id, Verification.status == only_if)
            .values(**values)
            .returning(Verification.id)
        )
        return result.first() is not None

    async def record_send(self, verification_id: str, *, message_id: str, now: datetime) -> None:
        await self.session.execute(
            update(Verification)
            .where(Verification.id == verification_id)
            .values(sends=Verification.sends + 1, last_message_id=message_id, last_sent_at=now)
        )
