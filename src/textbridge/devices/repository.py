"""All SQL for devices: phones, their SIM cards, the account's device login, and the tokens
and codes that register a phone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import (
    Device,
    DeviceCredential,
    DeviceLogin,
    Message,
    MessageStatus,
    SimCard,
)


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Device | SimCard | DeviceLogin | DeviceCredential) -> None:
        self.session.add(row)

    async def get(self, account_id: str, device_id: str) -> Device | None:
        result = await self.session.execute(
            select(Device).where(Device.id == device_id, Device.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def by_id(self, device_id: str) -> Device | None:
        return await self.session.get(Device, device_id)

    async def by_token(self, token_hash: str) -> Device | None:
        result = await self.session.execute(select(Device).where(Device.token_hash == token_hash))
        return result.scalar_one_or_none()

    async def devices(self, account_id: str) -> Sequence[Device]:
        result = await self.session.execute(
            select(Device).where(Device.account_id == account_id).order_by(Device.id)
        )
        return result.scalars().all()

    async def delete(self, device: Device) -> None:
        await self.session.delete(device)

    async def seen_online(self, device_id: str, at: datetime) -> bool:
        """Note a phone that is online was seen at ``at``; False when it is offline (or
        gone): then ``came_online`` is the UPDATE that notes it."""
        result = await self.session.execute(
            update(Device)
            .where(Device.id == device_id, Device.online.is_(True))
            .values(last_seen_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def came_online(self, device_id: str, at: datetime) -> Any | None:
        """Seen at ``at`` and online again, if it was offline: (account_id, name) then, else
        None (another process flipped it first: the row lock makes this one wait and see)."""
        result = await self.session.execute(
            update(Device)
            .where(Device.id == device_id, Device.online.is_(False))
            .values(online=True, last_seen_at=at)
            .returning(Device.account_id, Device.name)
        )
        return result.first()

    async def gone_offline(self, seen_before: datetime) -> Sequence[Any]:
        """Phones online but not seen since ``seen_before``, now offline: (id, account_id,
        name, last_seen_at) each. One UPDATE on ``(online, last_seen_at)``; a phone seen
        meanwhile no longer matches when the row lock is released, so it stays online."""
        result = await self.session.execute(
            update(Device)
            .where(Device.online.is_(True), Device.last_seen_at < seen_before)
            .values(online=False)
            .returning(Device.id, Device.account_id, Device.name, Device.last_seen_at)
            .execution_options(synchronize_session=False)
        )
        return result.all()

    # SIM cards ------------------------------------------------------------------------------

    async def sim_cards(
        self, account_id: str, device_ids: Sequence[str] | None = None
    ) -> Sequence[SimCard]:
        query = select(SimCard).where(SimCard.account_id == account_id)
        if device_ids is not None:
            query = query.where(SimCard.device_id.in_(device_ids))
        result = await self.session.execute(query.order_by(SimCard.id))
        return result.scalars().all()

    async def sim_card(self, account_id: str, sim_card_id: int) -> SimCard | None:
        result = await self.session.execute(
            select(SimCard).where(SimCard.id == sim_card_id, SimCard.account_id == account_id)
        )
        return result.scalar_one_or_none()

    # Registration -----------------------------------------------------------------------------

    async def login_of(self, account_id: str) -> DeviceLogin | None:
        return await self.session.get(DeviceLogin, account_id)

    async def login(self, login: str) -> DeviceLogin | None:
        result = await self.session.execute(select(DeviceLogin).where(DeviceLogin.login == login))
        return result.scalar_one_or_none()

    async def credential(self, kind: str, digest: str, now: datetime) -> DeviceCredential | None:
        """A live credential: not expired, and (a code) not used yet. Locked, so a code is
        used once even by two registrations at the same moment."""
        query = select(DeviceCredential).where(
            DeviceCredential.kind == kind,
            DeviceCredential.digest == digest,
            DeviceCredential.expires_at > now,
            DeviceCredential.used_at.is_(None),
        )
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            query = query.with_for_update()
        result = await self.session.execute(query)
        return result.scalar_one_or_none()

    async def digest_taken(self, digest: str) -> bool:
        result = await self.session.execute(
            select(DeviceCredential.id).where(DeviceCredential.digest == digest)
        )
        return result.first() is not None

    async def forget_spent(self, digest: str, now: datetime) -> None:
        """Drop an expired or used credential with this digest, so its code can be issued
        again (digests are unique)."""
        await self.session.execute(
            delete(DeviceCredential).where(
                DeviceCredential.digest == digest,
                or_(DeviceCredential.expires_at <= now, DeviceCredential.used_at.is_not(None)),
            )
        )

    # Routing ----------------------------------------------------------------------------------

    async def accounts_with_devices(self, account_ids: set[str]) -> set[str]:
        if not account_ids:
            return set()
        result = await self.session.execute(
            select(Device.account_id).where(Device.account_id.in_(account_ids)).distinct()
        )
        return set(result.scalars())

    async def senders(self, account_ids: set[str]) -> Sequence[Any]:
        """Every SIM of these accounts with its phone's state."""
        result = await self.session.execute(
            select(
                SimCard.id,
                SimCard.account_id,
                SimCard.device_id,
                SimCard.sim_number,
                SimCard.enabled,
                SimCard.present,
                SimCard.per_minute,
                SimCard.per_day,
                SimCard.work_start,
                SimCard.work_end,
                Device.enabled.label("device_enabled"),
                Device.last_seen_at,
            )
            .join(Device, Device.id == SimCard.device_id)
            .where(SimCard.account_id.in_(account_ids))
            .order_by(SimCard.id)
        )
        return result.all()

    async def sim_load(
        self, sim_ids: Sequence[int], now: datetime
    ) -> dict[int, tuple[int, int, int]]:
        """Per SIM: messages given to it in the last minute, in the last day, and those its
        phone has not finished."""
        if not sim_ids:
            return {}
        minute, day = now - timedelta(minutes=1), now - timedelta(days=1)
        result = await self.session.execute(
            select(
                Message.sim_card_id,
                func.sum(case((Message.dispatching_at >= minute, 1), else_=0)),
                func.count(),
                func.sum(case((Message.status == MessageStatus.DISPATCHING, 1), else_=0)),
            )
            .where(Message.sim_card_id.in_(sim_ids), Message.dispatching_at >= day)
            .group_by(Message.sim_card_id)
        )
        return {sim: (int(m or 0), int(d or 0), int(f or 0)) for sim, m, d, f in result.all()}
