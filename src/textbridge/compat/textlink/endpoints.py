"""TextLink's messaging API.

Its documented answers are all ``200``: ``{ok: true}``, ``{ok: false, message}`` when the message
could not be sent, ``{ok: true, queued: true}`` when it waits for a sender (here: when no sender
in this process can take it now; for an account with phones, no SIM). Its official client
reads only the body. Textbridge keeps ``200`` for refusals of the message itself (a bad number, a
text too long, no balance), and answers a missing or unknown key with ``401`` and a malformed
request with ``400``, in the same ``{ok: false, message}`` shape.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep, client_ip
from textbridge.api.routing import make_router
from textbridge.channels import ChannelKind
from textbridge.contacts.service import contacts
from textbridge.devices.channel import DeviceChannel
from textbridge.errors import (
    InsufficientBalance,
    NotFound,
    TextbridgeError,
    Unauthorized,
    ValidationFailed,
)
from textbridge.messages.service import SendCommand, messages
from textbridge.models import MessageType, VerificationStatus
from textbridge.runtime import Runtime
from textbridge.verify.service import StartVerification, verifications

router = make_router(tags=["TextLink"])

# Our field names, as TextLink's clients know them.
_FIELDS = {"to": "phone_number", "phone": "phone_number", "text": "text", "custom_id": "custom_id"}


class SendSms(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    text: StrictStr
    sim_card_id: StrictInt | None = None
    custom_id: Annotated[StrictStr, Field(max_length=255)] | None = None


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def render_error(error: TextbridgeError) -> Response:
    message = error.message
    if error.field in _FIELDS and message.startswith(error.field):
        message = _FIELDS[error.field] + message.removeprefix(error.field)
    if isinstance(error, Unauthorized):
        return _answer({"ok": False, "message": "Invalid API key"}, 401)
    if isinstance(error, InsufficientBalance) or (
        isinstance(error, ValidationFailed) and error.field in ("to", "text", "phone", "code")
    ):
        # What TextLink calls "Message sending failed": a 200 with the reason.
        return _answer({"ok": False, "message": message})
    return _answer({"ok": False, "message": message}, error.status_code)


@router.post("/send-sms", summary="TextLink: send an SMS")
async def send_sms(body: SendSms, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """``{ok: true}`` once the message is stored and queued for sending."""
    extra = {"sim_card_id": body.sim_card_id} if body.sim_card_id is not None else None
    # Asked before the message is stored, so that it does not count against its own SIM.
    queued = await _no_sender_now(caller.account_id, body.sim_card_id, runtime)
    await messages.send(
        caller,
        SendCommand(
            recipients=[body.phone_number],
            text=body.text,
            custom_id=body.custom_id,
            extra=extra,
        ),
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    return _answer({"ok": True, "queued": True} if queued else {"ok": True})


async def _no_sender_now(account_id: str, sim_card_id: int | None, runtime: Runtime) -> bool:
    """TextLink's "all senders busy, should be sent soon": no sender in this process can take
    the message now (an API-only process, a channel that is down; with phones, no SIM of the
    account's, or not the one pinned, is usable and under its limits)."""
    if runtime.worker is None:
        return True
    phones = runtime.channels.get(ChannelKind.DEVICE)
    if isinstance(phones, DeviceChannel):
        free = await phones.can_take_now(account_id, sim_card_id)
        if free is not None:
            return not free
    channel = runtime.channels.route(MessageType.PLAIN)
    return channel is None or not channel.healthy()


# Phone verification --------------------------------------------------------------------------


class SendCode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    service_name: Annotated[StrictStr, Field(max_length=110)] | None = None
    sim_card_id: StrictInt | None = None
    custom_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    # What its Python client sends: the lifetime in MILLISECONDS, and the sender's country.
    expiration_time: StrictInt | None = None
    source_country: StrictStr | None = None


class VerifyCode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    code: StrictStr | StrictInt


@router.post("/send-code", summary="TextLink: send a verification code")
async def send_code(
    body: SendCode, request: Request, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """``{ok: true, code}`` as documented; ``{ok: false, message}`` when it cannot be sent."""
    lifetime = None
    if body.expiration_time is not None:
        lifetime = max(1, body.expiration_time // 1000)
    started = await verifications.start(
        caller,
        StartVerification(
            phone=body.phone_number,
            service=body.service_name or "",
            lifetime_seconds=lifetime,
            custom_id=body.custom_id,
            client_ip=client_ip(request),
            sim_card_id=body.sim_card_id,
        ),
        db=runtime.db,
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    return _answer({"ok": True, "code": started.code})


@router.post("/verify-code", summary="TextLink: check a verification code")
async def verify_code(
    body: VerifyCode, session: SessionDep, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    try:
        result = await verifications.check(
            session,
            caller,
            code=str(body.code),
            settings=runtime.settings,
            phone=body.phone_number,
            service=None,
        )
    except NotFound:
        return _answer({"ok": False, "message": "The code is invalid"})
    if result.valid:
        return _answer({"ok": True})
    reasons = {
        VerificationStatus.EXPIRED: "The code has expired",
        VerificationStatus.MAX_ATTEMPTS_REACHED: "Too many attempts; request a new code",
        VerificationStatus.APPROVED: "The code was already used",
        VerificationStatus.CANCELED: "The code was canceled",
    }
    reason = reasons.get(VerificationStatus(result.verification.status), "The code is invalid")
    return _answer({"ok": False, "message": reason})


# Contacts ------------------------------------------------------------------------------------


class UpdateTag(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[StrictStr, Field(max_length=64)]
    tag: StrictStr | None = None


@router.post("/update-contect-tag", summary="TextLink: set a contact's tag (its spelling)")
@router.post("/update-contact-tag", summary="TextLink: set a contact's tag")
async def update_contact_tag(body: UpdateTag, session: SessionDep, caller: CallerDep) -> Response:
    """Tag the contact with this phone (created if there is none); no tag clears it. A change
    is recorded as a ``contact.tag_changed`` event."""
    await contacts.set_tag(session, caller, body.phone_number, body.tag)
    return _answer({"ok": True})
