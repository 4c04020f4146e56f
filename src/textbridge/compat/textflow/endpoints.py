"""TextFlow's messaging API: ``{ok, status, message, data}`` answers, with ``status`` repeating
the HTTP status, and the exact messages of its documentation ("Invalid API key" is a 400 there,
so it is here)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import orjson
import regex
from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from textbridge.accounts.service import Principal, accounts
from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep, client_ip, get_caller
from textbridge.api.routing import make_router
from textbridge.errors import NotFound, TextbridgeError, Unauthorized, ValidationFailed
from textbridge.kit.money import from_micros
from textbridge.messages.service import Accepted, SendCommand, messages
from textbridge.models import VerificationStatus
from textbridge.verify.service import (
    DEFAULT_TEMPLATE,
    SERVICE_TEMPLATE,
    StartVerification,
    verifications,
)

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
    if isinstance(error, CodeAuthError):
        return _answer(401, "Invalid API key or user id.")
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


# Phone verification --------------------------------------------------------------------------

_SERVICE_NAME = regex.compile(r"^[\p{L}\p{N} ]{0,110}$")


class CodeAuthError(Unauthorized):
    """A bad key on the verification endpoints, which TextFlow answers with a 401."""


async def _code_caller(request: Request, runtime: RuntimeDep) -> Principal:
    try:
        return await get_caller(request, runtime)
    except Unauthorized as exc:
        raise CodeAuthError(exc.message) from exc


CodeCallerDep = Annotated[Principal, Depends(_code_caller)]


class SendCode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    service_name: StrictStr | None = None
    seconds: StrictInt = 600


class VerifyCode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    code: Annotated[StrictStr | StrictInt, Field()]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@router.post("/send-code", summary="TextFlow: send a verification code")
async def send_code(
    body: SendCode, request: Request, caller: CodeCallerDep, runtime: RuntimeDep
) -> Response:
    """``data`` carries the code, the expiry (ms) and the SMS text, as documented."""
    if body.seconds > runtime.settings.verify_max_lifetime_seconds:
        return _answer(400, "Code can not be stored more then one day.")
    service = body.service_name or ""
    if not _SERVICE_NAME.match(service):
        return _answer(
            400,
            "Provider name can not be more than 110 characters and it can only consist of "
            "letters, numbers and spaces.",
        )
    try:
        started = await verifications.start(
            caller,
            StartVerification(
                phone=body.phone_number,
                service=service,
                lifetime_seconds=max(1, body.seconds),
                client_ip=client_ip(request),
            ),
            db=runtime.db,
            settings=runtime.settings,
            channels=runtime.channels,
            writer=runtime.writer,
        )
    except ValidationFailed as exc:
        if exc.field == "phone":
            return _answer(400, "Invalid phone number")
        raise
    template = SERVICE_TEMPLATE if service else DEFAULT_TEMPLATE
    return _answer(
        200,
        "Verification SMS sent. ",
        {
            "verification_code": started.code,
            "expires": _ms(started.verification.expires_at),
            "message_text": template.format(service=service, code=started.code),
        },
    )


@router.post("/verify-code", summary="TextFlow: check a verification code")
async def verify_code(
    body: VerifyCode, session: SessionDep, caller: CodeCallerDep, runtime: RuntimeDep
) -> Response:
    """``valid_code`` is not echoed back unless the account's ``echo_valid_code`` setting says."""
    code = str(body.code)
    if not (code.isascii() and code.isdigit() and 4 <= len(code) <= 10):
        return _verdict(400, "Invalid code", valid=False)
    try:
        result = await verifications.check(
            session,
            caller,
            code=code,
            settings=runtime.settings,
            phone=body.phone_number,
            service=None,
        )
    except ValidationFailed as exc:
        if exc.field == "phone":
            return _verdict(400, "Invalid phone number", valid=False, ok=False)
        raise
    except NotFound:
        return _verdict(400, "The code is invalid. ", valid=False)
    verification = result.verification
    extra: dict[str, Any] = {}
    account = await accounts.get(session, caller.account_id)
    if account.settings.get("echo_valid_code"):
        extra["valid_code"] = verifications.code_of(verification, runtime.settings)
    extra["expires"] = _ms(verification.expires_at)
    if result.valid:
        return _verdict(200, "The code is valid. ", valid=True, **extra)
    if verification.status == VerificationStatus.EXPIRED:
        return _verdict(400, "The code has expired. ", valid=False, **extra)
    return _verdict(400, "The code is invalid. ", valid=False, **extra)


def _verdict(status: int, message: str, *, valid: bool, ok: bool = True, **extra: Any) -> Response:
    body = {"ok": ok, "status": status, "message": message, "valid": valid, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
