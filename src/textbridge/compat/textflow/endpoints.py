"""TextFlow's messaging API: ``{ok, status, message, data}`` answers, with ``status`` repeating
the HTTP status, and the exact messages of its documentation ("Invalid API key" is a 400 there,
so it is here)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep
from textbridge.api.routing import make_router
from textbridge.errors import TextbridgeError, Unauthorized, ValidationFailed
from textbridge.kit.money import from_micros
from textbridge.messages.service import Accepted, SendCommand, messages

router = make_router(tags=["TextFlow"])

_FIELDS = {"to": "phone_number", "text": "text"}


class SendSms(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    text: StrictStr


def _answer(
    status: int,
    message: str,
    data: dict[str, Any] | None = None,
    *,
    user_id: str | None = None,
    count: int | None = None,
) -> Response:
    body: dict[str, Any] = {"ok": status < 400}
    # In the order of TextFlow's documented answers.
    if user_id is not None:
        body["userId"] = user_id
    if count is not None:
        body["count"] = count
    body.update(status=status, message=message)
    if data is not None:
        body["data"] = data
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def render_error(error: TextbridgeError) -> Response:
    if isinstance(error, Unauthorized):
        return _answer(400, "Invalid API key")
    if isinstance(error, ValidationFailed) and (
        "not a valid phone number" in error.message
        or (error.field == "phone_number" and not error.message.endswith("is required"))
    ):
        # Which one, for a bulk job: phone_numbers[i].
        field = error.field or ""
        where = f" (phone_numbers{field.removeprefix('to')})" if field.startswith("to[") else ""
        return _answer(400, "Phone number is invalid" + where)
    message = error.message
    if error.field in _FIELDS and message.startswith(error.field):
        message = _FIELDS[error.field] + message.removeprefix(error.field)
    return _answer(error.status_code, message)


@router.post("/send-sms", summary="TextFlow: send an SMS")
async def send_sms(body: SendSms, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """The message as sent, with the destination country's name and its price."""
    accepted = await messages.send(
        caller,
        SendCommand(recipients=[body.phone_number], text=body.text),
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    assert isinstance(accepted, Accepted)
    [row] = accepted.messages
    return _answer(
        200,
        "Message sent successfully",
        {
            "to": row["phone"],
            "content": row["text"],
            "country_code": row["country"],
            "price": from_micros(row["price_micros"]),
            "timestamp": int(time.time() * 1000),
        },
    )


class BulkSms(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_numbers: Annotated[list[Annotated[StrictStr, Field(max_length=64)]], Field(min_length=1)]
    text: StrictStr


@router.post("/bulk-sms", summary="TextFlow: send one SMS to many numbers")
async def bulk_sms(body: BulkSms, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """A bulk job: every number is checked and the whole job priced and stored before this
    answers; the messages go out at the channels' pace (follow them in /v1/bulk-jobs)."""
    await messages.send(
        caller,
        SendCommand(recipients=body.phone_numbers, text=body.text, bulk_source="textflow"),
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    return _answer(200, "Bulk SMS sending started", user_id=caller.account_id)


@router.post("/bulk-count", summary="TextFlow: recipients of bulk jobs not yet sent")
async def bulk_count(session: SessionDep, caller: CallerDep) -> Response:
    count = await messages.bulk_pending(session, caller)
    return _answer(200, "Bulk messages successfully counted", count=count)
