"""Native API: messages."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import Header, Query, Request, Response

from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.errors import ValidationFailed
from textbridge.idempotency.service import StoredAnswer, fingerprint
from textbridge.kit.ids import id_ceiling, id_floor
from textbridge.kit.money import from_micros
from textbridge.kit.phone import InvalidPhoneNumber, parse_phone
from textbridge.messages.repository import MessageFilter
from textbridge.messages.schemas import (
    BulkJobOut,
    BulkJobPage,
    CreateBulkJob,
    MessageOut,
    MessagePage,
    SendAnswer,
    SendMessage,
    accepted_message,
)
from textbridge.messages.service import (
    Accepted,
    BulkProgress,
    IdempotentRequest,
    SendCommand,
    messages,
)
from textbridge.models import Direction, MessageStatus

router = make_router(prefix="/v1/messages", tags=["messages"])

JSON = "application/json"


@router.post("", status_code=202, response_model=SendAnswer)
async def send_messages(
    body: SendMessage,
    request: Request,
    caller: CallerDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Send a message to one or many recipients. Answers once every message is stored.

    With an ``Idempotency-Key``, the same key and body answer the first answer again and create
    nothing; the same key with another body is refused."""
    command = SendCommand(
        recipients=[body.to] if isinstance(body.to, str) else body.to,
        contacts=body.contacts,
        groups=body.groups,
        personalize=True,
        text=body.text,
        sender=body.sender,
        type=body.type,
        schedule_at=body.schedule_at,
        ttl_seconds=body.ttl_seconds,
        custom_id=body.custom_id,
        extra=body.type_fields(),
        channel=body.channel,
    )
    routed = await messages.routed_now(caller, body.type, body.channel, runtime.channels)
    render = partial(_stored_answer, channel=routed)
    idempotent = None
    if idempotency_key is not None:
        request_hash = fingerprint("POST", request.url.path, await request.body())
        idempotent = IdempotentRequest(idempotency_key, request_hash, render)
    outcome = await messages.send(
        caller,
        command,
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
        idempotent=idempotent,
    )
    answer = outcome if isinstance(outcome, StoredAnswer) else render(outcome)
    return Response(answer.body, status_code=answer.status_code, media_type=JSON)


def _stored_answer(accepted: Accepted, *, channel: str | None) -> StoredAnswer:
    answer = SendAnswer(
        batch_id=accepted.batch_id,
        status=MessageStatus.ACCEPTED if accepted.scheduled else MessageStatus.QUEUED,
        count=len(accepted.messages),
        total_price=from_micros(accepted.total_price_micros),
        messages=[accepted_message(row, channel) for row in accepted.messages],
    )
    return StoredAnswer(202, answer.model_dump_json())


@router.get("", response_model=MessagePage)
async def list_messages(
    session: SessionDep,
    caller: CallerDep,
    page: PageDep,
    status: MessageStatus | None = None,
    direction: Direction | None = None,
    batch_id: Annotated[str | None, Query(max_length=26)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MessagePage:
    """Messages of the account, newest first, filtered; follow ``next_cursor`` for more."""
    # Times without an offset are UTC, as everywhere in this API.
    since = _aware(since) if since else None
    until = _aware(until) if until else None
    if since and until and since > until:
        raise ValidationFailed("since is after until", field="since")
    where = MessageFilter(
        status=status,
        direction=direction,
        batch_id=batch_id,
        phone=_phone_filter(phone),
        id_from=id_floor(since) if since else None,
        id_to=id_ceiling(until) if until else None,
        before=page.before,
    )
    rows = await messages.search(session, caller, where, limit=page.fetch)
    sends = await messages.sends(session, [row.id for row in rows[: page.limit]])
    return MessagePage(
        data=[MessageOut.of(row, sends.get(row.id, ())) for row in rows[: page.limit]],
        next_cursor=page.next_cursor(rows),
    )


@router.get("/{message_id}", response_model=MessageOut, response_model_by_alias=True)
async def get_message(message_id: str, session: SessionDep, caller: CallerDep) -> MessageOut:
    """One message with its status and the time it reached each status."""
    message = await messages.get(session, caller, message_id)
    sends = await messages.sends(session, [message.id])
    return MessageOut.of(message, sends.get(message.id, ()))


@router.post("/{message_id}/cancel", response_model=MessageOut)
async def cancel_message(message_id: str, session: SessionDep, caller: CallerDep) -> MessageOut:
    """Cancel a message not yet handed to a channel (accepted or queued); its price is refunded.
    One a phone holds is still ``dispatching`` in the answer: it is cancelled (and refunded)
    once the phone confirms, or sent if the phone had already sent it."""
    return MessageOut.of(await messages.cancel(session, caller, message_id))


def _phone_filter(phone: str | None) -> str | None:
    if phone is None:
        return None
    try:
        return parse_phone(phone).e164
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(str(exc), field="phone") from exc


def _aware(moment: datetime) -> datetime:
    # Not converted to UTC: the extremes (year 1 at +14:00) have no UTC form, yet compare fine.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


bulk_router = make_router(prefix="/v1/bulk-jobs", tags=["bulk jobs"])


def _bulk_out(progress: BulkProgress) -> BulkJobOut:
    return BulkJobOut(
        id=progress.job.id,
        source=progress.job.source,
        total=progress.job.total,
        pending=progress.pending,
        by_status=progress.by_status,
        created_at=progress.job.created_at,
    )


@bulk_router.post("", status_code=202, response_model=BulkJobOut)
async def create_bulk_job(
    body: CreateBulkJob, caller: CallerDep, runtime: RuntimeDep
) -> BulkJobOut:
    """Accept a campaign; its messages go out at the channels' pace, after ordinary traffic."""
    accepted = await messages.send(
        caller,
        SendCommand(
            recipients=body.to,
            contacts=body.contacts,
            groups=body.groups,
            personalize=True,
            text=body.text,
            sender=body.sender,
            schedule_at=body.schedule_at,
            ttl_seconds=body.ttl_seconds,
            bulk_source="native",
        ),
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    assert isinstance(accepted, Accepted)
    return _bulk_out(BulkProgress.of(accepted, "native"))


@bulk_router.get("", response_model=BulkJobPage)
async def list_bulk_jobs(session: SessionDep, caller: CallerDep, page: PageDep) -> BulkJobPage:
    """The account's bulk jobs, newest first, with their progress."""
    jobs = await messages.bulk_jobs(session, caller, before=page.before, limit=page.fetch)
    return BulkJobPage(
        data=[_bulk_out(job) for job in jobs[: page.limit]],
        next_cursor=page.next_cursor([job.job for job in jobs]),
    )


@bulk_router.get("/{job_id}", response_model=BulkJobOut)
async def get_bulk_job(job_id: str, session: SessionDep, caller: CallerDep) -> BulkJobOut:
    """One bulk job and how far it has gone."""
    return _bulk_out(await messages.bulk_job(session, caller, job_id))


@bulk_router.post("/{job_id}/cancel", response_model=BulkJobOut)
async def cancel_bulk_job(job_id: str, session: SessionDep, caller: CallerDep) -> BulkJobOut:
    """Cancel the job's messages not yet handed to a channel; their price is refunded."""
    return _bulk_out(await messages.cancel_bulk_job(session, caller, job_id))
