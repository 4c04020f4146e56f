"""TextBoost's SMS API: ``{status: "success", data}`` or ``{status: "error", message}``.

Its documents leave ``data`` unspecified ("sms reports with all details"); Textbridge answers
message objects (``uid``, ``to``, ``from``, ``message``, ``type``, ``status``, ``cost``,
``sms_count``...), one object for one recipient and a list for several, and pages lists the way
TextBoost's platform (Laravel) does: ``?page=N``, ``current_page``, ``last_page``, ``per_page``,
``total``, ``data``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from textbridge.accounts.service import accounts
from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep
from textbridge.api.routing import make_router
from textbridge.compat.textboost.contacts import router as contacts_router
from textbridge.compat.textboost.shapes import PER_PAGE, answer, laravel_page, success
from textbridge.errors import TextbridgeError, ValidationFailed
from textbridge.kit.money import from_micros
from textbridge.messages.repository import MessageFilter
from textbridge.messages.service import Accepted, SendCommand, messages
from textbridge.models import Direction, Message, MessageType

router = make_router(tags=["TextBoost"])
router.include_router(contacts_router)

_FIELDS = {"to": "recipient", "text": "message", "sender": "sender_id", "type": "type"}


class SendSms(BaseModel):
    model_config = ConfigDict(extra="ignore")

    recipient: Annotated[StrictStr, Field(max_length=64_000)] = ""
    # Not in its documents: the platform's name for sending to contact groups (comma separated
    # group uids), accepted here besides or instead of ``recipient``.
    contact_list_id: Annotated[StrictStr, Field(max_length=10_000)] = ""
    sender_id: Annotated[StrictStr, Field(max_length=32)]
    type: Literal["plain", "voice", "mms"]
    message: StrictStr | None = None
    schedule_time: StrictStr | None = None
    dlt_template_id: Annotated[StrictStr, Field(max_length=64)] | None = None
    language: StrictStr | None = None
    gender: StrictStr | None = None
    media_url: Annotated[StrictStr, Field(max_length=2048)] | None = None


def render_error(error: TextbridgeError) -> Response:
    message = error.message
    if error.field in _FIELDS and message.startswith(error.field):
        message = _FIELDS[error.field] + message.removeprefix(error.field)
    elif error.field is not None and error.field.startswith("to["):
        message = f"recipient {error.field[2:]}: {message}"
    return answer({"status": "error", "message": message}, error.status_code)


def _sms(message: Message | dict[str, Any]) -> dict[str, Any]:
    get = message.__getitem__ if isinstance(message, dict) else partial(getattr, message)
    outbound = get("direction") == Direction.OUT
    phone = str(get("phone")).removeprefix("+")
    ours = get("sender")
    extra = get("extra") or {}
    return {
        "uid": get("id"),
        "to": phone if outbound else ours,
        "from": ours if outbound else phone,
        "message": get("text"),
        "type": get("type"),
        "status": get("status"),
        "cost": from_micros(get("price_micros")),
        "sms_count": get("segments"),
        "country": get("country"),
        "direction": "outgoing" if outbound else "incoming",
        **{key: extra[key] for key in ("media_url", "language", "gender") if key in extra},
        "created_at": get("created_at").isoformat(),
    }


def _command(body: SendSms) -> SendCommand:
    # The type's own fields travel as they are; the message service checks them.
    fields = {
        "dlt_template_id": body.dlt_template_id,
        "language": body.language,
        "gender": body.gender,
        "media_url": body.media_url,
    }
    kind = MessageType(body.type)
    if kind is not MessageType.MMS and not body.message:
        raise ValidationFailed("message is required", field="message")
    return SendCommand(
        recipients=_split(body.recipient),
        groups=_split(body.contact_list_id),
        personalize=True,
        text=body.message or "",
        sender=body.sender_id,
        type=kind,
        schedule_at=_schedule(body.schedule_time),
        extra={name: value for name, value in fields.items() if value is not None} or None,
    )


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _schedule(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationFailed(
            "schedule_time must be 'Y-m-d H:i', e.g. 2021-12-20 07:00 (UTC)",
            field="schedule_time",
        ) from exc


@router.post("/http/sms/send", summary="TextBoost: send an SMS, voice or MMS message")
async def send_sms(body: SendSms, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """One message per recipient (``recipient`` may list several, comma separated)."""
    accepted = await messages.send(
        caller,
        _command(body),
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    assert isinstance(accepted, Accepted)
    reports = [_sms(row) for row in accepted.messages]
    return success(reports[0] if len(reports) == 1 else reports)


@router.get("/v3/sms/{uid}", summary="TextBoost: one message")
@router.get("/http/sms/{uid}", include_in_schema=False)
async def view_sms(uid: str, session: SessionDep, caller: CallerDep) -> Response:
    return success(_sms(await messages.get(session, caller, uid)))


@router.get("/v3/sms", summary="TextBoost: messages, newest first, by page")
@router.get("/http/sms", include_in_schema=False)
async def list_sms(
    session: SessionDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    total = await messages.count(session, caller)
    rows = await messages.search(
        session, caller, MessageFilter(), limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return success(laravel_page([_sms(row) for row in rows], page, total))


@router.get("/http/balance", summary="TextBoost: the account's balance")
async def balance(session: SessionDep, caller: CallerDep, runtime: RuntimeDep) -> Response:
    account = await accounts.get(session, caller.account_id)
    return success(
        {
            "remaining_balance": from_micros(account.balance_micros),
            "currency": runtime.settings.currency,
        }
    )


@router.get("/http/me", summary="TextBoost: the caller's profile")
async def me(session: SessionDep, caller: CallerDep, runtime: RuntimeDep) -> Response:
    account = await accounts.get(session, caller.account_id)
    return success(
        {
            "uid": account.id,
            "name": account.name,
            "balance": from_micros(account.balance_micros),
            "currency": runtime.settings.currency,
            "created_at": account.created_at.isoformat(),
        }
    )
