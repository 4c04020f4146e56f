"""Phone verification, to reference/otp-security.md.

- Codes come from a random nonce (``secrets``) and the server secret; only their HMAC is
  stored, and a resend derives the same code again instead of keeping it.
- A check counts the attempt and compares the count in one conditional UPDATE: parallel wrong
  guesses get at most ``VERIFY_MAX_CHECKS`` evaluations, then the verification is dead.
- One live verification per account, phone and service; a resend within its lifetime sends the
  same code, at most ``VERIFY_MAX_SENDS`` times, with a cooldown that doubles.
- The code SMS is an ordinary message (priced, queued, reported) at urgent priority.
- Codes are never logged.

Starting a verification spans two transactions around the message's group commit (the SMS is
accepted first, then the verification row recorded), so this service opens them itself.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from limits import parse, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal, accounts
from textbridge.channels import Channels
from textbridge.db import Database
from textbridge.errors import NotFound, TooManyRequests, ValidationFailed
from textbridge.events.service import EventType, event, record
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.phone import InvalidPhoneNumber, number_type, parse_phone
from textbridge.kit.secrets import code_fingerprint, one_time_code
from textbridge.messages.service import Accepted, Priority, SendCommand, messages
from textbridge.messages.writer import AcceptanceWriter
from textbridge.models import Verification, VerificationStatus
from textbridge.settings import Settings
from textbridge.verify.repository import VerificationRepository

log = structlog.get_logger(__name__)

# Number types an SMS code can reach; premium-rate, shared-cost, toll-free and the like cost
# the sender money (SMS pumping) or never reach a person.
SMS_NUMBER_TYPES = frozenset({"mobile", "fixed_line_or_mobile"})
DEFAULT_TEMPLATE = "Your verification code is: {code}"
SERVICE_TEMPLATE = "Your verification code for {service} is: {code}"


@dataclass(frozen=True, kw_only=True)
class StartVerification:
    phone: str
    service: str = ""
    code_length: int = 6
    lifetime_seconds: int | None = None
    sender: str | None = None
    template: str | None = None
    custom_id: str | None = None
    client_ip: str | None = None  # for the per-IP limit, when the caller knows it
    sim_card_id: int | None = None  # the SIM of the account's phones to send the code from


@dataclass(frozen=True, slots=True)
class Started:
    verification: Verification
    code: str  # for the dialects that hand it back (TextLink, TextFlow); never logged
    message: Accepted
    resent: bool


@dataclass(frozen=True, slots=True)
class CheckResult:
    valid: bool
    verification: Verification


class Guard:
    """Rate limits and the SMS-pumping guard, in this process's memory (``limits``' moving
    windows). A deployment of several API processes on one PostgreSQL gets limits per process;
    shared limits (Redis) wait for a measurement that needs them.

    The pumping guard counts an account's starts per number prefix and blocks the prefix for
    that account alone: one tenant's burst must not stop every other tenant's codes to the
    same numbers for twelve hours. A guard across accounts exists only when the operator sets
    ``VERIFY_PREFIX_BURST_ALL_ACCOUNTS``."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        # (account id, or None for every account; prefix) -> blocked until (epoch seconds)
        self._blocked_prefixes: dict[tuple[str | None, str], float] = {}

    def forget(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._blocked_prefixes.clear()

    def admit(
        self, caller: Principal, phone: str, client_ip: str | None, settings: Settings
    ) -> None:
        """Count one start, or refuse it with a 429 saying when to try again."""
        prefix = phone[:-4]
        scopes: list[tuple[str | None, int]] = [(caller.account_id, settings.verify_prefix_burst)]
        if settings.verify_prefix_burst_all_accounts:
            scopes.append((None, settings.verify_prefix_burst_all_accounts))
        for scope, _ in scopes:
            blocked_until = self._blocked_prefixes.get((scope, prefix), 0.0)
            if blocked_until > time.time():
                raise _prefix_blocked(blocked_until - time.time())
        checks = [
            (settings.verify_limit_per_phone, ("phone", caller.account_id, phone), "phone"),
            (settings.verify_limit_per_key, ("key", caller.key_id), None),
        ]
        if client_ip:
            checks.append((settings.verify_limit_per_ip, ("ip", client_ip), None))
        for spec, key, field in checks:
            for item in parse_many(spec):
                if not self._limiter.test(item, *key):
                    reset = self._limiter.get_window_stats(item, *key).reset_time
                    raise TooManyRequests(
                        f"verification limit {item} reached for this {key[0]}",
                        retry_after=reset - time.time(),
                        field=field,
                    )
        # Tested before anything is counted (nothing awaits in between, so no other start
        # slips in): a start refused here counts against no limit.
        for scope, burst in scopes:
            window = parse(f"{burst}/10 minutes")
            if not self._limiter.test(window, "prefix", scope or "*", prefix):
                self._blocked_prefixes[(scope, prefix)] = (
                    time.time() + settings.verify_prefix_block_seconds
                )
                log.warning(
                    "number prefix blocked for a burst of verifications",
                    prefix=prefix,
                    account_id=scope or "all accounts",
                )
                raise _prefix_blocked(settings.verify_prefix_block_seconds)
        for scope, burst in scopes:
            self._limiter.hit(parse(f"{burst}/10 minutes"), "prefix", scope or "*", prefix)
        for spec, key, _ in checks:
            for item in parse_many(spec):
                self._limiter.hit(item, *key)


def _prefix_blocked(retry_after: float) -> TooManyRequests:
    return TooManyRequests(
        "too many codes were sent to numbers like this one; try again later",
        retry_after=retry_after,
        field="phone",
    )


class VerificationService:
    def __init__(self) -> None:
        self.guard = Guard()

    def forget(self) -> None:
        """Drop in-memory state (a new runtime starts cold)."""
        self.guard.forget()

    async def start(
        self,
        caller: Principal,
        request: StartVerification,
        *,
        db: Database,
        settings: Settings,
        channels: Channels,
        writer: AcceptanceWriter,
    ) -> Started:
        """Send a code to a phone, or the same code again while one is pending."""
        phone = _sms_phone(request.phone)
        allowed = await self._allowed_countries(db, caller)
        if allowed and parse_phone(phone).region not in allowed:
            raise ValidationFailed(
                f"this account sends codes only to {', '.join(sorted(allowed))}", field="phone"
            )
        if not 4 <= request.code_length <= 10:
            raise ValidationFailed("code_length must be between 4 and 10", field="code_length")
        lifetime = request.lifetime_seconds or settings.verify_default_lifetime_seconds
        if not 1 <= lifetime <= settings.verify_max_lifetime_seconds:
            raise ValidationFailed(
                f"lifetime must be between 1 and {settings.verify_max_lifetime_seconds} seconds",
                field="lifetime_seconds",
            )
        template = request.template or (SERVICE_TEMPLATE if request.service else DEFAULT_TEMPLATE)
        if "{code}" not in template:
            raise ValidationFailed("template must contain {code}", field="template")
        now = utcnow()
        secret = settings.resolved_secret_key
        async with db.transaction() as session:
            current = await VerificationRepository(session).latest(
                caller.account_id, phone, request.service
            )
        live = (
            current is not None
            and current.status == VerificationStatus.PENDING
            and current.expires_at > now
            and current.attempts < settings.verify_max_checks
        )
        if live:
            assert current is not None
            _check_resend(current, now, settings)
            verification = current
        else:
            self.guard.admit(caller, phone, request.client_ip, settings)
            verification_id = new_id()
            nonce = secrets.token_hex(16)
            code = one_time_code(secret, nonce, request.code_length)
            verification = Verification(
                id=verification_id,
                account_id=caller.account_id,
                phone=phone,
                service=request.service,
                code_length=request.code_length,
                nonce=nonce,
                code_hmac=code_fingerprint(secret, verification_id, code),
                status=VerificationStatus.PENDING,
                attempts=0,
                sends=1,
                last_sent_at=now,
                expires_at=now + timedelta(seconds=lifetime),
                created_at=now,
            )
        code = one_time_code(secret, verification.nonce, verification.code_length)
        accepted = await messages.send(
            caller,
            SendCommand(
                recipients=[phone],
                text=template.replace("{service}", request.service),
                one_time_code=(verification.nonce, verification.code_length),
                sender=request.sender,
                custom_id=request.custom_id,
                priority=Priority.URGENT,
                ttl_seconds=lifetime,
                extra={"sim_card_id": request.sim_card_id} if request.sim_card_id else None,
            ),
            settings=settings,
            channels=channels,
            writer=writer,
        )
        assert isinstance(accepted, Accepted)
        message_id = accepted.messages[0]["id"]
        async with db.transaction() as session:
            repository = VerificationRepository(session)
            if live:
                await repository.record_send(verification.id, message_id=message_id, now=now)
                verification.sends += 1
                verification.last_sent_at = now
            else:
                verification.last_message_id = message_id
                repository.add(verification)
                if current is not None and current.status == VerificationStatus.PENDING:
                    # One live verification per phone and service: the new one replaces it.
                    await repository.set_status(current.id, VerificationStatus.CANCELED, now=now)
        return Started(verification, code, accepted, resent=live)

    async def check(
        self,
        session: AsyncSession,
        caller: Principal,
        *,
        code: str,
        settings: Settings,
        verification_id: str | None = None,
        phone: str | None = None,
        service: str | None = "",
    ) -> CheckResult:
        """Check a code. Every check of a pending verification counts, right or wrong.

        By phone, ``service`` picks the verification; ``None`` takes the phone's newest of any
        service (the dialects' verify endpoints name no service)."""
        if not (code.isdigit() and code.isascii() and 4 <= len(code) <= 10):
            raise ValidationFailed("code must be 4 to 10 digits", field="code")
        repository = VerificationRepository(session)
        verification = await self._find(
            repository, caller, verification_id=verification_id, phone=phone, service=service
        )
        now = utcnow()
        taken = await repository.take_attempt(
            verification.id, now=now, max_checks=settings.verify_max_checks
        )
        if taken is None:
            # No check allowed: say why, settling an expiry or exhaustion nobody recorded yet.
            if verification.status == VerificationStatus.PENDING:
                final = (
                    VerificationStatus.EXPIRED
                    if verification.expires_at <= now
                    else VerificationStatus.MAX_ATTEMPTS_REACHED
                )
                await repository.set_status(verification.id, final, now=now)
                verification.status = final
            return CheckResult(False, verification)
        attempts, stored = taken
        verification.attempts = attempts
        expected = code_fingerprint(settings.resolved_secret_key, verification.id, code)
        if hmac.compare_digest(stored, expected):
            if await repository.set_status(verification.id, VerificationStatus.APPROVED, now=now):
                verification.status = VerificationStatus.APPROVED
                verification.approved_at = now
                approved = event(
                    account_id=verification.account_id,
                    type=EventType.VERIFICATION_APPROVED,
                    subject_id=verification.id,
                    data={
                        "id": verification.id,
                        "phone": verification.phone,
                        "service": verification.service,
                        "status": VerificationStatus.APPROVED.value,
                        "approved_at": now.isoformat(),
                    },
                )
                await record(session, [approved])
                return CheckResult(True, verification)
            return CheckResult(False, verification)  # a parallel check settled it first
        if attempts >= settings.verify_max_checks:
            await repository.set_status(
                verification.id, VerificationStatus.MAX_ATTEMPTS_REACHED, now=now
            )
            verification.status = VerificationStatus.MAX_ATTEMPTS_REACHED
        return CheckResult(False, verification)

    @staticmethod
    async def _allowed_countries(db: Database, caller: Principal) -> set[str]:
        """The account's ``verify_countries`` setting (ISO codes); empty allows every one."""
        async with db.transaction() as session:
            account = await accounts.get(session, caller.account_id)
        return {str(code).upper() for code in account.settings.get("verify_countries") or []}

    @staticmethod
    def code_of(verification: Verification, settings: Settings) -> str:
        """The code again, for the dialects whose documented answers carry it."""
        return one_time_code(
            settings.resolved_secret_key, verification.nonce, verification.code_length
        )

    async def get(
        self, session: AsyncSession, caller: Principal, verification_id: str
    ) -> Verification:
        verification = await VerificationRepository(session).get(caller.account_id, verification_id)
        if verification is None:
            raise NotFound(f"no verification {verification_id}", field="id")
        if (
            verification.status == VerificationStatus.PENDING
            and verification.expires_at <= utcnow()
        ):
            verification.status = VerificationStatus.EXPIRED
        return verification

    async def cancel(
        self, session: AsyncSession, caller: Principal, verification_id: str
    ) -> Verification:
        verification = await self.get(session, caller, verification_id)
        if await VerificationRepository(session).set_status(
            verification.id, VerificationStatus.CANCELED, now=utcnow()
        ):
            verification.status = VerificationStatus.CANCELED
        return verification

    @staticmethod
    async def _find(
        repository: VerificationRepository,
        caller: Principal,
        *,
        verification_id: str | None,
        phone: str | None,
        service: str | None,
    ) -> Verification:
        if verification_id is not None:
            found = await repository.get(caller.account_id, verification_id)
            if found is None:
                raise NotFound(f"no verification {verification_id}", field="verification_id")
            return found
        if phone is None:
            raise ValidationFailed("phone or verification_id is required", field="phone")
        try:
            e164 = parse_phone(phone).e164
        except InvalidPhoneNumber as exc:
            raise ValidationFailed(str(exc), field="phone") from exc
        found = await repository.latest(caller.account_id, e164, service)
        if found is None:
            raise NotFound("no verification for this phone number", field="phone")
        return found


def _sms_phone(raw: str) -> str:
    try:
        phone = parse_phone(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(str(exc), field="phone") from exc
    kind = number_type(phone.e164)
    if kind not in SMS_NUMBER_TYPES:
        raise ValidationFailed(
            f"{phone.e164} is a {kind.replace('_', ' ')} number; codes go only to mobile numbers",
            field="phone",
        )
    return phone.e164


def _check_resend(current: Verification, now: datetime, settings: Settings) -> None:
    if current.sends >= settings.verify_max_sends:
        retry = (current.expires_at - current.last_sent_at).total_seconds()
        raise TooManyRequests(
            f"this code was sent {current.sends} times; wait for it to expire",
            retry_after=retry,
            field="phone",
        )
    wait = settings.verify_resend_cooldown_seconds * 2 ** (current.sends - 1)
    ready = current.last_sent_at + timedelta(seconds=wait)
    if ready > now:
        raise TooManyRequests(
            "a code was sent to this number moments ago; wait before sending it again",
            retry_after=(ready - now).total_seconds(),
            field="phone",
        )


verifications = VerificationService()
