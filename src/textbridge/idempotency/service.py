"""Idempotency keys: the same key with the same body answers the first answer again and creates
nothing; the same key with another body is refused. The record is written in the transaction
of the work it answers for, so it exists exactly when the work does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.errors import Conflict, IdempotencyMismatch, ValidationFailed
from textbridge.idempotency.repository import IdempotencyRepository
from textbridge.kit.clock import utcnow
from textbridge.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), body)).hexdigest()


class IdempotencyService:
    async def replay(
        self, session: AsyncSession, *, account_id: str, key: str, request_hash: str
    ) -> StoredAnswer | None:
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 255 printable characters", field="Idempotency-Key"
            )
        record = await IdempotencyRepository(session).get(account_id, key)
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used with a different request", field="Idempotency-Key"
            )
        return StoredAnswer(record.status_code, record.body)

    async def remember(
        self,
        session: AsyncSession,
        *,
        account_id: str,
        key: str,
        request_hash: str,
        answer: StoredAnswer,
    ) -> None:
        IdempotencyRepository(session).add(
            IdempotencyRecord(
                account_id=account_id,
                key=key,
                request_hash=request_hash,
                status_code=answer.status_code,
                body=answer.body,
                created_at=utcnow(),
            )
        )
        try:
            await session.flush()
        except IntegrityError as exc:
            # Another request with this key committed between our lookup and now.
            raise Conflict(
                "a request with this Idempotency-Key is in progress; retry it",
                field="Idempotency-Key",
            ) from exc

    async def purge_expired(self, session: AsyncSession) -> None:
        await IdempotencyRepository(session).delete_older_than(utcnow() - KEEP_FOR)


idempotency = IdempotencyService()
