"""Devices: phones that register with the SMSGate device protocol and send the account's
messages through their SIM cards.

A phone registers in one of three ways, as the app does: with the account's pairing token
(``Bearer``; from ``POST /v1/devices/pairing``), with the account's device login and password
(``Basic``; made when the first phone registers, shown to it once) or with a one-time code
(``Code``; from the pairing call or ``GET /user/code``). It gets its own bearer token back,
stored as a digest like an API key.

Guessing is bounded three ways, each counting failures in moving windows (and attempts still
being checked as failures, so parallel guesses cannot outrun a limit): per client address
(``DEVICE_AUTH_LIMIT``), per account once a login names it (the same limit), and for codes
across every address (``DEVICE_CODE_FAILURE_LIMIT``), since a code names no account before it
matches. A code is 15 digits: 2^49.8, so the guesses a whole day at the global limit allows
(864,000 at 600 a minute) find one of even 1,000 live codes with a chance under 10^-6.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import string
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal
from textbridge.devices.hub import announce
from textbridge.devices.repository import DeviceRepository
from textbridge.errors import (
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from textbridge.events.service import EventType, record
from textbridge.events.service import event as event_row  # `event` is a phone's, below
from textbridge.kit.clock import millis_iso, utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.secrets import hash_api_key, sign, sign_phone_event
from textbridge.models import Device, DeviceCredential, DeviceLogin, SimCard
from textbridge.settings import Settings

PAIRING_TOKEN_PREFIX = "tbp_"  # noqa: S105 (a prefix, not a secret)
DEVICE_TOKEN_PREFIX = "tbd_"  # noqa: S105
PAIRING_LIFETIME = timedelta(hours=24)
CODE_LIFETIME = timedelta(minutes=10)
# One-time codes are digits only: the app's code field is a number field (inputType
# number|numberPassword), so letters and dashes cannot be typed there. Shown in groups of five.
CODE_DIGITS = 15
CODE_GROUP = 5
_ALPHANUMERIC = string.ascii_letters + string.digits
_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Pairing:
    token: str
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Registered:
    device: Device
    token: str
    login: str
    password: str | None  # only when this registration made the login


@dataclass(frozen=True, slots=True)
class SimReport:
    """A SIM card as the app describes it."""

    sim_number: int
    slot_index: int | None = None
    phone_number: str | None = None
    carrier_name: str | None = None
    iccid: str | None = None


def online(last_seen_at: datetime | None, settings: Settings, now: datetime) -> bool:
    """Seen within ``DEVICE_ONLINE_SECONDS``."""
    return last_seen_at is not None and now - last_seen_at < timedelta(
        seconds=settings.device_online_seconds
    )


def _presence(
    type: EventType, device_id: str, account_id: str, name: str, last_seen_at: datetime | None
) -> dict[str, Any]:
    """A ``device.online`` or ``device.offline`` event."""
    return event_row(
        account_id=account_id,
        type=type,
        subject_id=device_id,
        data={
            "device_id": device_id,
            "name": name,
            "last_seen_at": last_seen_at.isoformat() if last_seen_at else None,
        },
    )


def _random(length: int, alphabet: str = _ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _new_code() -> str:
    digits = _random(CODE_DIGITS, string.digits)
    return "-".join(digits[i : i + CODE_GROUP] for i in range(0, CODE_DIGITS, CODE_GROUP))


def _typed_code(typed: str) -> str | None:
    """A code's digits as typed: with or without its dashes (or spaces); ``None`` when it
    cannot be a code."""
    digits = typed.replace("-", "").replace(" ", "")
    if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit():
        return digits
    return None


def _code_digest(settings: Settings, digits: str) -> str:
    # A plain hash of 15 digits falls to one GPU in about a day: keyed with the server's secret.
    return sign(settings.resolved_secret_key, f"device-code:{digits}".encode())


class Failures:
    """Failed attempts per key in ``limits``' moving windows, in this process's memory.

    An attempt is admitted only while the failures in each window, plus the attempts still
    being checked, stay under the limit: counting after the check alone let a burst of
    parallel guesses all pass the test before the first failure was counted."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._checking: Counter[tuple[str, ...]] = Counter()

    @contextmanager
    def guard(self, limit: str, key: tuple[str, ...], refusal: str) -> Iterator[None]:
        """One attempt under ``limit`` ("N/period;..."): a 429 saying ``refusal`` when the
        key's budget is spent; an ``Unauthorized`` from the block counts as a failure."""
        items = parse_many(limit)
        for item in items:
            stats = self._limiter.get_window_stats(item, *key)
            if stats.remaining - self._checking[key] <= 0:
                raise TooManyRequests(refusal, retry_after=max(stats.reset_time - time.time(), 1))
        self._checking[key] += 1
        try:
            yield
        except Unauthorized:
            for item in items:
                self._limiter.hit(item, *key)
            raise
        finally:
            self._checking[key] -= 1
            if not self._checking[key]:
                del self._checking[key]


class DeviceService:
    def __init__(self) -> None:
        self._failures = Failures()

    def forget(self) -> None:
        self._failures = Failures()

    def _from_address(
        self, client_ip: str | None, settings: Settings
    ) -> AbstractContextManager[None]:
        """Failed credentials per client address (``DEVICE_AUTH_LIMIT``)."""
        return self._failures.guard(
            settings.device_auth_limit,
            ("address", client_ip or "?"),
            "too many failed attempts from this address; try again later",
        )

    # Pairing --------------------------------------------------------------------------------

    async def pair(self, session: AsyncSession, caller: Principal, settings: Settings) -> Pairing:
        """A pairing token for the app's registration and a one-time code for adding phones."""
        now = utcnow()
        token = PAIRING_TOKEN_PREFIX + secrets.token_urlsafe(24)
        repository = DeviceRepository(session)
        repository.add(
            DeviceCredential(
                id=new_id(),
                account_id=caller.account_id,
                kind="token",
                digest=hash_api_key(token),
                expires_at=now + PAIRING_LIFETIME,
                created_at=now,
            )
        )
        code, _ = await self._code(session, caller.account_id, settings, now)
        return Pairing(token=token, code=code, expires_at=now + PAIRING_LIFETIME)

    async def user_code(
        self,
        session: AsyncSession,
        authorization: str,
        client_ip: str | None,
        settings: Settings,
    ) -> tuple[str, datetime]:
        """``GET /user/code``: a one-time code for the account whose login this is."""
        with self._from_address(client_ip, settings):
            login = await self._basic(session, authorization, settings)
        return await self._code(session, login.account_id, settings, utcnow())

    async def _code(
        self, session: AsyncSession, account_id: str, settings: Settings, now: datetime
    ) -> tuple[str, datetime]:
        repository = DeviceRepository(session)
        for _ in range(20):
            code = _new_code()
            digest = _code_digest(settings, code.replace("-", ""))
            await repository.forget_spent(digest, now)
            if not await repository.digest_taken(digest):
                break
        else:  # pragma: no cover - 10^15 codes live at once
            raise ValidationFailed("too many live codes; try again later")
        expires_at = now + CODE_LIFETIME
        repository.add(
            DeviceCredential(
                id=new_id(),
                account_id=account_id,
                kind="code",
                digest=digest,
                expires_at=expires_at,
                created_at=now,
            )
        )
        return code, expires_at

    # Registration ---------------------------------------------------------------------------

    async def register(
        self,
        session: AsyncSession,
        authorization: str,
        name: str,
        push_token: str | None,
        sims: Sequence[SimReport],
        client_ip: str | None,
        settings: Settings,
    ) -> Registered:
        with self._from_address(client_ip, settings):
            account_id, login, password = await self._registrant(session, authorization, settings)
        now = utcnow()
        repository = DeviceRepository(session)
        token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        device = Device(
            id=_random(21),
            account_id=account_id,
            name=name,
            push_token=push_token,
            token_hash=hash_api_key(token),
            signing_key=secrets.token_hex(32),
            enabled=True,
            last_seen_at=now,
            online=True,
            created_at=now,
            updated_at=now,
        )
        repository.add(device)
        await session.flush()
        await record(
            session, [_presence(EventType.DEVICE_ONLINE, device.id, account_id, name, now)]
        )
        await self._report_sims(session, device, sims, now)
        return Registered(device, token, login.login, password)

    async def _registrant(
        self, session: AsyncSession, authorization: str, settings: Settings
    ) -> tuple[str, DeviceLogin, str | None]:
        """Whose phone this is, by its credentials; the account's device login (made now,
        with its password, for the first phone)."""
        now = utcnow()
        repository = DeviceRepository(session)
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        made_password = None
        if scheme == "basic":
            login = await self._basic(session, authorization, settings)
            account_id = login.account_id
        elif scheme in ("bearer", "code") and value:
            if scheme == "bearer":
                credential = await repository.credential("token", hash_api_key(value), now)
                if credential is None:
                    raise Unauthorized("unknown or expired pairing token")
            else:
                credential = await self._code_credential(repository, value, settings, now)
            account_id = credential.account_id
            existing = await repository.login_of(account_id)
            if existing is not None:
                login = existing
            else:
                made_password = secrets.token_urlsafe(12)
                login = DeviceLogin(
                    account_id=account_id,
                    login=_random(8, string.ascii_uppercase + string.digits),
                    password_hash=_HASHER.hash(made_password),
                    created_at=now,
                    updated_at=now,
                )
                repository.add(login)
        else:
            raise Unauthorized("send 'Authorization: Bearer <pairing token>', Basic or Code")
        return account_id, login, made_password

    async def _code_credential(
        self, repository: DeviceRepository, typed: str, settings: Settings, now: datetime
    ) -> DeviceCredential:
        """The live code typed, now used; failures count across all addresses."""
        with self._failures.guard(
            settings.device_code_failure_limit,
            ("code",),
            "too many wrong one-time codes lately; try again later, or register with the "
            "pairing token or the login",
        ):
            digits = _typed_code(typed)
            found = None
            if digits is not None:
                found = await repository.credential("code", _code_digest(settings, digits), now)
            if found is None:
                raise Unauthorized("unknown or expired code")
        found.used_at = now
        return found

    async def _basic(
        self, session: AsyncSession, authorization: str, settings: Settings
    ) -> DeviceLogin:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("send 'Authorization: Basic <login:password>'")
        try:
            login_name, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("the Basic credentials are not base64 of login:password") from exc
        login = await DeviceRepository(session).login(login_name)
        if login is None:
            raise Unauthorized("wrong login or password")
        # The account is known: its failures count from every address too.
        with self._failures.guard(
            settings.device_auth_limit,
            ("login", login.account_id),
            "too many failed attempts for this login; try again later",
        ):
            if not _password_ok(login, password):
                raise Unauthorized("wrong login or password")
        return login

    # The phone ------------------------------------------------------------------------------

    async def authenticate(self, session: AsyncSession, authorization: str) -> Device:
        """The phone whose bearer token this is."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send 'Authorization: Bearer <device token>'")
        device = await DeviceRepository(session).by_token(hash_api_key(token.strip()))
        if device is None:
            raise Unauthorized("unknown device token")
        if not device.enabled:
            raise Forbidden("this device is disabled")
        now = utcnow()
        if device.last_seen_at is None or now - device.last_seen_at > timedelta(seconds=10):
            await self._seen(session, device.id, now)
            device.last_seen_at = now
        return device

    async def seen(self, session: AsyncSession, device_id: str) -> None:
        await self._seen(session, device_id, utcnow())

    async def _seen(self, session: AsyncSession, device_id: str, now: datetime) -> None:
        """Note the phone was seen now; one that was offline is online again, with its
        ``device.online`` event in this transaction. Online is the usual case: one UPDATE."""
        repository = DeviceRepository(session)
        if await repository.seen_online(device_id, now):
            return
        back = await repository.came_online(device_id, now)
        if back is not None:
            await record(
                session,
                [_presence(EventType.DEVICE_ONLINE, device_id, back.account_id, back.name, now)],
            )

    async def sweep_offline(self, session: AsyncSession, settings: Settings) -> int:
        """Housekeeping: phones not seen for ``DEVICE_ONLINE_SECONDS`` go offline, each with
        its ``device.offline`` event; answers how many. Only the UPDATE that flipped a phone
        tells it, so several workers sweeping at once tell it once."""
        cutoff = utcnow() - timedelta(seconds=settings.device_online_seconds)
        gone = await DeviceRepository(session).gone_offline(cutoff)
        await record(
            session,
            [
                _presence(
                    EventType.DEVICE_OFFLINE, row.id, row.account_id, row.name, row.last_seen_at
                )
                for row in gone
            ],
        )
        return len(gone)

    async def patch(
        self,
        session: AsyncSession,
        device: Device,
        device_id: str,
        push_token: str | None,
        sims: Sequence[SimReport] | None,
    ) -> None:
        if device_id != device.id:
            raise Forbidden("that is not this device's id", field="id")
        now = utcnow()
        device.push_token = push_token
        device.updated_at = now
        if sims is not None:
            await self._report_sims(session, device, sims, now)

    async def _report_sims(
        self, session: AsyncSession, device: Device, sims: Sequence[SimReport], now: datetime
    ) -> None:
        """The phone's SIMs as it sees them now: new ones added, known ones updated (their
        ids and limits kept), missing ones kept but not present."""
        repository = DeviceRepository(session)
        known = {
            sim.sim_number: sim
            for sim in await repository.sim_cards(device.account_id, [device.id])
        }
        for sim in known.values():
            sim.present = False
        for report in sims:
            found = known.get(report.sim_number)
            if found is not None:
                sim = found
            else:
                sim = SimCard(
                    account_id=device.account_id,
                    device_id=device.id,
                    sim_number=report.sim_number,
                    enabled=True,
                    created_at=now,
                )
                repository.add(sim)
            sim.slot_index = report.slot_index
            sim.phone_number = report.phone_number
            sim.carrier_name = report.carrier_name
            sim.iccid = report.iccid
            sim.present = True
            sim.updated_at = now
        await session.flush()

    async def change_password(
        self, session: AsyncSession, device: Device, current: str, new: str
    ) -> None:
        login = await DeviceRepository(session).login_of(device.account_id)
        if login is None or not _password_ok(login, current):
            raise Unauthorized("the current password is wrong")
        if not 8 <= len(new) <= 128:
            raise ValidationFailed("newPassword must be 8 to 128 characters", field="newPassword")
        login.password_hash = _HASHER.hash(new)
        login.updated_at = utcnow()

    async def sim_numbers(self, session: AsyncSession, device: Device) -> dict[int, int]:
        """The phone's SIM ids, to the numbers it knows them by."""
        sims = await DeviceRepository(session).sim_cards(device.account_id, [device.id])
        return {sim.id: sim.sim_number for sim in sims}

    async def from_phone(
        self, session: AsyncSession, body: bytes, timestamp: str, signature: str
    ) -> tuple[Device, dict[str, Any]]:
        """An event a phone posted to us (``sms:received``, ``sms:sent``...), once its
        signature checks out with that phone's key and it is at most five minutes old."""
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed("the body is not JSON") from exc
        if not isinstance(event, dict) or not isinstance(event.get("deviceId"), str):
            raise ValidationFailed("deviceId is required", field="deviceId")
        device = await DeviceRepository(session).by_id(event["deviceId"][:64])
        if (
            device is None
            or not timestamp.isdigit()
            or abs(time.time() - int(timestamp)) > 300
            or not hmac.compare_digest(
                sign_phone_event(device.signing_key, body, timestamp), signature.lower()
            )
        ):
            raise Unauthorized("the signature does not match, or the request is too old")
        if not device.enabled:
            raise Forbidden("this device is disabled")
        await self._seen(session, device.id, utcnow())
        return device, event

    async def app_settings(
        self, session: AsyncSession, device: Device, settings: Settings
    ) -> dict[str, Any]:
        """What the app imports from ``GET /settings``: the key that signs its events to us,
        how often to ping, and the phone's sending limit."""
        sims = await DeviceRepository(session).sim_cards(device.account_id, [device.id])
        return {
            "messages": _phone_limit([sim for sim in sims if sim.enabled and sim.present]),
            "webhooks": {"signing_key": device.signing_key, "internet_required": True},
            "ping": {"interval_seconds": settings.device_ping_seconds},
            "gateway": {"notification_channel": "SSE_ONLY"},
        }

    async def accounts_with_devices(self, session: AsyncSession, account_ids: set[str]) -> set[str]:
        """Which of these accounts have a phone: their messages go to phones by default."""
        return await DeviceRepository(session).accounts_with_devices(account_ids)

    # Native API -----------------------------------------------------------------------------

    async def devices(
        self, session: AsyncSession, caller: Principal
    ) -> tuple[Sequence[Device], dict[str, list[SimCard]]]:
        repository = DeviceRepository(session)
        devices = await repository.devices(caller.account_id)
        sims: dict[str, list[SimCard]] = {device.id: [] for device in devices}
        for sim in await repository.sim_cards(caller.account_id):
            sims.setdefault(sim.device_id, []).append(sim)
        return devices, sims

    async def get(self, session: AsyncSession, caller: Principal, device_id: str) -> Device:
        device = await DeviceRepository(session).get(caller.account_id, device_id)
        if device is None:
            raise NotFound(f"no device {device_id}", field="id")
        return device

    async def request_export(
        self,
        session: AsyncSession,
        caller: Principal,
        device_id: str,
        since: datetime,
        until: datetime,
    ) -> None:
        """The phone replays the SMS it received in that span (``MessagesExportRequested``)."""
        device = await self.get(session, caller, device_id)
        span = {"since": millis_iso(since), "until": millis_iso(until)}
        await announce(session, [device.id], "MessagesExportRequested", span)

    async def update(
        self, session: AsyncSession, caller: Principal, device_id: str, changes: dict[str, Any]
    ) -> Device:
        device = await self.get(session, caller, device_id)
        for name in ("name", "enabled"):
            if changes.get(name) is not None:
                setattr(device, name, changes[name])
        device.updated_at = utcnow()
        await session.flush()
        return device

    async def delete(self, session: AsyncSession, caller: Principal, device_id: str) -> None:
        device = await self.get(session, caller, device_id)
        await DeviceRepository(session).delete(device)

    async def sim_cards(self, session: AsyncSession, caller: Principal) -> Sequence[SimCard]:
        return await DeviceRepository(session).sim_cards(caller.account_id)

    async def update_sim(
        self, session: AsyncSession, caller: Principal, sim_card_id: int, changes: dict[str, Any]
    ) -> SimCard:
        sim = await DeviceRepository(session).sim_card(caller.account_id, sim_card_id)
        if sim is None:
            raise NotFound(f"no SIM card {sim_card_id}", field="id")
        for name, value in changes.items():
            setattr(sim, name, value)
        if (sim.work_start is None) != (sim.work_end is None):
            raise ValidationFailed("work_start and work_end go together", field="work_end")
        sim.updated_at = utcnow()
        await session.flush()
        await announce(session, [sim.device_id], "SettingsUpdated")  # its limit may change
        return sim


def _phone_limit(sims: Sequence[SimCard]) -> dict[str, Any]:
    """The app's own limit, one per phone, from its SIMs' (which routing keeps): their sum,
    per minute when every SIM has one, else per day when every SIM has that. Never tighter
    than routing, it catches what routing let through when several dispatchers counted at
    once."""
    for period, field in (("PerMinute", "per_minute"), ("PerDay", "per_day")):
        limits = [getattr(sim, field) for sim in sims]
        if limits and None not in limits:
            return {"limit_period": period, "limit_value": sum(limits)}
    return {"limit_period": "Disabled", "limit_value": 0}


def _password_ok(login: DeviceLogin, password: str) -> bool:
    try:
        return _HASHER.verify(login.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


devices = DeviceService()
