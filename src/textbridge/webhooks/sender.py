"""Delivering webhooks: claim due deliveries under a lease, POST each signed, record the answer.

A 2xx within the timeout is delivered. Anything else is tried again with exponential backoff
and jitter until the delivery is ``WEBHOOK_MAX_AGE_SECONDS`` old, then it fails; an endpoint
whose deliveries keep failing for good is disabled. The events of one resource (a message, a
contact) reach an endpoint in order: the next waits until the one before is delivered or has
failed for good (the claim's rule). Redirects are not followed and only the
first bytes of an answer are read. A crash between sending and recording sends again after
the lease: receivers drop the duplicate by ``X-Textbridge-Event-Id``.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import certifi
import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db import Database
from textbridge.db.engine import log_failure
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.secrets import sign_webhook
from textbridge.notices.service import notify
from textbridge.settings import Settings
from textbridge.webhooks import bodies
from textbridge.webhooks.bodies import TEXTLINK, Subject
from textbridge.webhooks.guard import DestinationRefused, check_destination
from textbridge.webhooks.repository import WebhookRepository

log = structlog.get_logger(__name__)

_ANSWER_LIMIT = 4096  # bytes of a receiver's answer kept for the log
_CONCURRENT = 32  # requests in flight per process


def signed_headers(secret: str, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Textbridge-Webhooks/1",
        "x-textbridge-event-id": event_id,
        "x-textbridge-timestamp": str(timestamp),
        "x-textbridge-signature": "v1=" + sign_webhook(secret, timestamp, body),
    }


async def post(
    http: httpx.AsyncClient, url: str, secret: str, event_id: str, body: bytes, settings: Settings
) -> tuple[int | None, str | None]:
    """One signed request: the status code, and what was wrong (``None`` for a 2xx). The whole
    of it (name lookup, connecting, sending, the answer) gets ``WEBHOOK_TIMEOUT_SECONDS``:
    httpx's timeouts are per step, so a receiver trickling its answer would hold on longer."""
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            await check_destination(url, allow_private=settings.webhook_allow_private)
            headers = signed_headers(secret, event_id, body, int(time.time()))
            request = http.build_request("POST", url, content=body, headers=headers)
            response = await http.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= _ANSWER_LIMIT:
                        break
            finally:
                await response.aclose()
    except DestinationRefused as exc:
        return None, str(exc)
    except (TimeoutError, httpx.TimeoutException):
        return None, f"no answer within {settings.webhook_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:255]
    if not 200 <= response.status_code < 300:
        return response.status_code, f"answered {response.status_code}"
    return response.status_code, None


@functools.cache
def _tls() -> ssl.SSLContext:
    """The trust store httpx would load (certifi's), loaded once per process: loading it took
    50 ms, for every worker start and every test button press."""
    return ssl.create_default_context(cafile=certifi.where())


def http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=_tls(),
        follow_redirects=False,
        timeout=settings.webhook_timeout_seconds,
        limits=httpx.Limits(max_connections=64),
    )


class WebhookSender:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def run(self) -> None:
        async with http_client(self.settings) as http:
            while True:
                try:
                    handled = await self.send_once(http)
                except Exception as exc:
                    log_failure(log, "webhook round failed", exc)
                    handled = 0
                    await asyncio.sleep(1.0)
                if handled == 0:
                    await asyncio.sleep(self.settings.webhook_poll_seconds)

    async def send_once(self, http: httpx.AsyncClient) -> int:
        now = utcnow()
        # Long enough for every request of the round, one timeout each, and the records.
        rounds = -(-self.settings.webhook_batch_size // _CONCURRENT)
        lease = now + timedelta(seconds=self.settings.webhook_timeout_seconds * (rounds + 1) + 5)

        async def claim(session: AsyncSession) -> tuple[Sequence[Any], dict[Key, Subject]]:
            rows = await WebhookRepository(session).claim(
                now, lease, self.settings.webhook_batch_size
            )
            return rows, await _subjects(session, rows)

        rows, subjects = await self.db.run(claim)
        if not rows:
            return 0
        # Each row is the first pending event of its resource at its endpoint: all can go at
        # once.
        gate = asyncio.Semaphore(_CONCURRENT)

        async def deliver(row: Any) -> Outcome:
            subject = subjects.get((row.event_id, row.endpoint_id), Subject())
            body = bodies.render(
                row.format, row.event_id, row.type, row.event_at, row.data, subject, row.secret
            )
            async with gate:
                started = time.monotonic()
                status_code, error = await post(
                    http, row.url, row.secret, row.event_id, body, self.settings
                )
                return Outcome(row, status_code, error, time.monotonic() - started)

        outcomes = await asyncio.gather(*(deliver(row) for row in rows))
        await self.db.run(lambda session: self._record(session, outcomes))
        return len(rows)

    async def _record(self, session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
        """What came of a round, in one transaction: each delivery settled (delivered, failed
        for good, or due again after a backoff with full jitter), each request logged, and
        the endpoints' runs of failures counted."""
        now = utcnow()
        settings = self.settings
        settled, attempts = [], []
        final: list[tuple[Any, bool, str | None]] = []  # (row, delivered, error) in order
        for outcome in outcomes:
            row, error = outcome.row, outcome.error
            status, next_at = self._next(row, error, now)
            settled.append(
                {
                    "b_event_id": row.event_id,
                    "b_endpoint_id": row.endpoint_id,
                    "status": status,
                    "next_attempt_at": next_at,
                    "last_status_code": outcome.status_code,
                    "last_error": error,
                    "delivered_at": now if status == "delivered" else None,
                    "failed_at": now if status == "failed" else None,
                }
            )
            attempts.append(
                {
                    "id": new_id(),
                    "event_id": row.event_id,
                    "endpoint_id": row.endpoint_id,
                    "at": now,
                    "duration_ms": int(outcome.took * 1000),
                    "status_code": outcome.status_code,
                    "error": error,
                }
            )
            if status != "pending":
                final.append((row, status == "delivered", error))
            if status == "failed":
                log.warning(
                    "webhook delivery failed",
                    endpoint_id=row.endpoint_id,
                    event_id=row.event_id,
                    error=error,
                )
                notify(
                    session,
                    settings,
                    row.account_id,
                    "webhook_failed",
                    f"{row.type} event {row.event_id} could not be delivered to {row.url} "
                    f"in {row.attempts + 1} attempts over "
                    f"{(now - row.created_at).total_seconds() / 3600:.1f} h (the last: "
                    f"{error}). Send it again with POST /v1/webhooks/{row.endpoint_id}"
                    f"/deliveries/{row.event_id}/redeliver.",
                )
        repository = WebhookRepository(session)
        await repository.settle_many(settled)
        await repository.log_many(attempts)
        if final:
            await self._count_failures(session, repository, final, now)

    def _next(self, row: Any, error: str | None, now: datetime) -> tuple[str, datetime]:
        """A delivery's status after an attempt, and when it is due again if it is pending."""
        settings = self.settings
        if error is None:
            return "delivered", now
        if (now - row.created_at).total_seconds() >= settings.webhook_max_age_seconds:
            return "failed", now
        ceiling = min(
            settings.webhook_retry_max_seconds,
            settings.webhook_retry_base_seconds * 2**row.attempts,
        )
        return "pending", now + timedelta(seconds=random.uniform(ceiling / 2, ceiling))

    async def _count_failures(
        self,
        session: AsyncSession,
        repository: WebhookRepository,
        final: Sequence[tuple[Any, bool, str | None]],
        now: datetime,
    ) -> None:
        """Deliveries failed for good in a row, per endpoint; one that reaches
        ``WEBHOOK_DISABLE_AFTER`` is disabled, with a notice."""
        settings = self.settings
        failures = await repository.failures({row.endpoint_id for row, _, _ in final})
        start = dict(failures)
        disabled: dict[str, tuple[Any, str]] = {}
        for row, delivered, error in final:
            failures[row.endpoint_id] = 0 if delivered else failures.get(row.endpoint_id, 0) + 1
            count = failures[row.endpoint_id]
            if count >= settings.webhook_disable_after and row.endpoint_id not in disabled:
                reason = f"{count} deliveries in a row failed for good; the last: {error}"
                disabled[row.endpoint_id] = (row, reason[:255])
        for endpoint_id, count in failures.items():
            if count != start.get(endpoint_id):
                await repository.set_failures(endpoint_id, count)
        for endpoint_id, (row, reason) in disabled.items():
            await repository.disable(endpoint_id, reason, now)
            notify(
                session,
                settings,
                row.account_id,
                "webhook_disabled",
                f"The webhook endpoint {endpoint_id} ({row.url}) was disabled: {reason}. Its "
                f'deliveries wait; enable it with PATCH /v1/webhooks/{endpoint_id} {{"enabled": '
                "true}.",
            )
            log.warning("webhook endpoint disabled", endpoint_id=endpoint_id)


Key = tuple[str, str]  # (event id, endpoint id): one delivery


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Any  # the claimed delivery
    status_code: int | None
    error: str | None  # None: delivered
    took: float


async def _subjects(session: AsyncSession, rows: Sequence[Any]) -> dict[Key, Subject]:
    """What each delivery's body needs besides the event: the message it is about; for
    TextLink's bodies, the name and tag of the phone's contact and whether the account is a
    sub-account. Read when sending, so a body shows the message as it is now."""
    if not rows:
        return {}
    repository = WebhookRepository(session)
    messages = await repository.messages(
        [row.subject_id for row in rows if row.type.startswith("message.")]
    )
    textlink = [row for row in rows if row.format == TEXTLINK]
    contacts = await repository.contacts(
        {
            (row.account_id, messages[row.subject_id].phone)
            for row in textlink
            if row.type == "message.received" and row.subject_id in messages
        }
    )
    sub_accounts = await repository.sub_accounts(
        {row.account_id for row in textlink if row.type == "contact.tag_changed"}
    )
    subjects = {}
    for row in rows:
        message = messages.get(row.subject_id)
        contact = contacts.get((row.account_id, message.phone)) if message else None
        subjects[row.event_id, row.endpoint_id] = Subject(
            message=message,
            contact_name=contact.name if contact else None,
            contact_tag=contact.tag if contact else None,
            subuser_id=row.account_id if row.account_id in sub_accounts else None,
        )
    return subjects
