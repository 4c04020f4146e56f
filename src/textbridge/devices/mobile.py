"""The SMSGate device protocol (``/api/mobile/v1``), as the unmodified "SMS Gateway for
Android" app speaks it in private-server mode (../shared/reference/smsgate-mobile-api.md).

Field names are the app's (camelCase), dates carry milliseconds and the zone
(``2026-11-22T10:00:00.000Z``) and errors are ``{"message"}``. The app treats every non-2xx
as an error and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
import structlog
from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from textbridge.api.deps import RuntimeDep, SessionDep, SettingsDep, client_ip
from textbridge.api.routing import make_router
from textbridge.channels import InboundSms
from textbridge.devices.hub import hub
from textbridge.devices.service import SimReport, devices
from textbridge.errors import TextbridgeError, ValidationFailed
from textbridge.kit.clock import as_utc, millis_iso, utcnow
from textbridge.kit.phone import InvalidPhoneNumber, parse_national, parse_phone
from textbridge.messages.service import PhoneReport, messages
from textbridge.models import Device

log = structlog.get_logger(__name__)

PREFIX = "/api/mobile/v1"
router = make_router(prefix=PREFIX, tags=["device protocol (SMSGate)"])


def render_error(error: TextbridgeError) -> Response:
    return Response(
        orjson.dumps({"message": error.message}),
        status_code=error.status_code,
        media_type="application/json",
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


Short = Annotated[StrictStr, Field(max_length=64)]


class SimCardIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slotIndex: StrictInt | None = None
    simNumber: Annotated[StrictInt, Field(ge=1, le=8)]
    phoneNumber: Short | None = None
    carrierName: Short | None = None
    iccid: Short | None = None

    def report(self) -> SimReport:
        return SimReport(
            sim_number=self.simNumber,
            slot_index=self.slotIndex,
            phone_number=self.phoneNumber,
            carrier_name=self.carrierName,
            iccid=self.iccid,
        )


SimCards = Annotated[list[SimCardIn], Field(max_length=8)]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    pushToken: Annotated[StrictStr, Field(max_length=512)] | None = None
    simCards: SimCards = []


class PatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[StrictStr, Field(max_length=64)]
    pushToken: Annotated[StrictStr, Field(max_length=512)] | None = None
    simCards: SimCards | None = None


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    currentPassword: Annotated[StrictStr, Field(max_length=128)]
    newPassword: Annotated[StrictStr, Field(max_length=128)]


def _authorization(request: Request) -> str:
    return request.headers.get("authorization", "")


async def get_device(request: Request, session: SessionDep) -> Device:
    return await devices.authenticate(session, _authorization(request))


DeviceDep = Annotated[Device, Depends(get_device)]


def _device_out(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "createdAt": millis_iso(device.created_at),
        "updatedAt": millis_iso(device.updated_at),
        "lastSeen": millis_iso(device.last_seen_at or device.updated_at),
    }


@router.post("/device", status_code=201)
async def register(
    body: RegisterIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """A phone joins the account: ``Bearer <pairing token>``, ``Basic <login:password>`` or
    ``Code <one-time code>``. The password is in the answer only when this made it."""
    registered = await devices.register(
        session,
        _authorization(request),
        body.name,
        body.pushToken,
        [sim.report() for sim in body.simCards],
        client_ip(request),
        settings,
    )
    return _json(
        {
            "id": registered.device.id,
            "token": registered.token,
            "login": registered.login,
            "password": registered.password,
        },
        201,
    )


@router.get("/device")
async def whoami(request: Request, session: SessionDep) -> Response:
    """The calling phone (when it sends its token) and the address it calls from."""
    body: dict[str, Any] = {"externalIp": client_ip(request)}
    if _authorization(request):
        body["device"] = _device_out(await devices.authenticate(session, _authorization(request)))
    return _json(body)


@router.patch("/device", status_code=204)
async def patch_device(body: PatchIn, device: DeviceDep, session: SessionDep) -> Response:
    sims = None if body.simCards is None else [sim.report() for sim in body.simCards]
    await devices.patch(session, device, body.id, body.pushToken, sims)
    return Response(status_code=204)


@router.get("/user/code")
async def user_code(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A one-time code that adds a phone (``Code``), for the login and password sent."""
    code, valid_until = await devices.user_code(
        session, _authorization(request), client_ip(request), settings
    )
    return _json({"code": code, "validUntil": millis_iso(valid_until)})


@router.patch("/user/password", status_code=204)
async def change_password(body: PasswordIn, device: DeviceDep, session: SessionDep) -> Response:
    await devices.change_password(session, device, body.currentPassword, body.newPassword)
    return Response(status_code=204)


@router.get("/settings")
async def app_settings(device: DeviceDep, session: SessionDep, settings: SettingsDep) -> Response:
    return _json(await devices.app_settings(session, device, settings))


# Push: Server-Sent Events -------------------------------------------------------------------


@router.get("/events")
async def events(device: DeviceDep, runtime: RuntimeDep) -> StreamingResponse:
    """The phone's stream (the app's "SSE only" channel): ``MessageEnqueued`` when it was
    given messages, ``MessageCancelled`` (``{"messageId"}``) when one is cancelled, a
    ``:keepalive`` comment every ``DEVICE_KEEPALIVE_SECONDS``. The app
    pulls right after it connects, and reconnects by itself."""
    device_id, keepalive = device.id, runtime.settings.device_keepalive_seconds

    async def stream() -> AsyncIterator[bytes]:
        queue = hub.subscribe(device_id)
        touched = time.monotonic()
        try:
            yield b":connected\n\n"
            while True:
                try:
                    async with asyncio.timeout(keepalive):
                        kind, data = await queue.get()
                except TimeoutError:
                    yield b":keepalive\n\n"
                    if time.monotonic() - touched > 60:  # connected: online, seen now
                        touched = time.monotonic()
                        await runtime.db.run(lambda session: devices.seen(session, device_id))
                    continue
                yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        finally:
            hub.unsubscribe(device_id, queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


# Messages ----------------------------------------------------------------------------------

STATES = ("Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelling", "Cancelled")


def _priority(ours: int) -> int:
    """Ours: lower goes first, 5 by default; the app's: -128..127, 100 and up expedited."""
    return 100 if ours < 5 else 0


@router.get("/message")
async def pull(
    device: DeviceDep,
    session: SessionDep,
    settings: SettingsDep,
    order: Annotated[str, Query(pattern="^(lifo|fifo)$")] = "lifo",
) -> Response:
    """Up to 100 messages given to this phone and not yet taken (``Pending``) or to cancel
    (``Cancelling``), until it reports them."""
    given = await messages.given_to_phone(
        session, device.id, newest_first=order == "lifo", settings=settings
    )
    sims = await devices.sim_numbers(session, device)
    return _json(
        [
            {
                "id": message.id,
                "textMessage": {"text": text},
                "dataMessage": None,
                "message": text,
                "phoneNumbers": [message.phone],
                "simNumber": sims.get(message.sim_card_id or 0),
                "withDeliveryReport": True,
                "isEncrypted": False,
                "priority": _priority(message.priority),
                "validUntil": millis_iso(message.expires_at) if message.expires_at else None,
                "scheduleAt": None,
                "state": "Cancelling" if cancelling else "Pending",
                "createdAt": millis_iso(message.created_at),
            }
            for message, text, cancelling in given
        ]
    )


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phoneNumber: Short
    state: StrictStr
    error: Annotated[StrictStr, Field(max_length=1000)] | None = None


class MessageStateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[StrictStr, Field(max_length=36)]
    state: Annotated[StrictStr, Field(pattern="^(" + "|".join(STATES) + ")$")]
    recipients: Annotated[list[RecipientIn], Field(max_length=100)] = []
    states: dict[Annotated[StrictStr, Field(max_length=16)], StrictStr] = {}

    def report(self, now: datetime) -> PhoneReport:
        error = next((r.error for r in self.recipients if r.error), None)
        return PhoneReport(
            message_id=self.id,
            state=self.state,
            at=_parse_date(self.states.get(self.state)) or now,
            sent_at=_parse_date(self.states.get("Sent")),
            error=error[:255] if error else None,
        )


def _parse_date(value: str | None) -> datetime | None:
    """The app's dates (milliseconds and a zone); one it cannot have meant is ignored."""
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


@router.patch("/message", status_code=204)
async def report(
    body: Annotated[list[MessageStateIn], Field(max_length=500)],
    device: DeviceDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """What became of messages: taken (Processed), Sent, Delivered, Failed, Cancelled. Ids
    this phone was not given are ignored."""
    now = utcnow()
    reports = [item.report(now) for item in body]
    await messages.record_phone_reports(session, device.id, reports, settings)
    return Response(status_code=204)


# Events the phone posts to us -------------------------------------------------------------

PHONE_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping")
_STATE_OF = {"sms:sent": "Sent", "sms:delivered": "Delivered", "sms:failed": "Failed"}


@router.get("/webhooks")
async def phone_webhooks(device: DeviceDep, request: Request, settings: SettingsDep) -> Response:
    """Where the phone posts what happens on it: our own URL, for each event we use."""
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return _json(
        [
            {"id": f"textbridge-{event.replace(':', '-')}", "url": f"{base}{PREFIX}/hook",
             "event": event}
            for event in PHONE_EVENTS
        ]
    )  # fmt: skip


@router.post("/hook", status_code=204)
async def phone_event(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """An event from a phone, signed with the key it took from ``GET /settings``: a received
    SMS becomes an inbound message, ``sms:sent`` / ``delivered`` / ``failed`` report on a
    message it was given. The phone retries until it gets a 2xx, so a repeat is harmless."""
    body = await request.body()
    device, event = await devices.from_phone(
        session,
        body,
        request.headers.get("x-timestamp", ""),
        request.headers.get("x-signature", ""),
    )
    found = event.get("payload")
    payload: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = event.get("event")
    now = utcnow()
    if kind == "sms:received":
        await _received(session, device, payload, str(event.get("id") or ""), settings)
    elif kind in _STATE_OF and isinstance(payload.get("messageId"), str):
        state = _STATE_OF[str(kind)]
        at_field = {"Sent": "sentAt", "Delivered": "deliveredAt", "Failed": "failedAt"}[state]
        reason = payload.get("reason")
        report = PhoneReport(
            message_id=payload["messageId"][:36],
            state=state,
            at=_parse_date(payload.get(at_field)) or now,
            sent_at=_parse_date(payload.get("sentAt")),
            error=str(reason)[:255] if reason else None,
        )
        await messages.record_phone_reports(session, device.id, [report], settings)
    return Response(status_code=204)


async def _received(
    session: SessionDep, device: Device, payload: dict[str, Any], event_id: str, settings: Any
) -> None:
    sender, text = payload.get("sender"), payload.get("message")
    if not isinstance(sender, str) or not isinstance(text, str):
        raise ValidationFailed("payload.sender and payload.message are required")
    sim_number = payload.get("simNumber")
    sims = await devices.sim_numbers(session, device)
    sim_card_id = next((i for i, n in sims.items() if n == sim_number), None)
    ref = f"{device.id}:{payload.get('messageId') or event_id}"[:64]
    recipient = payload.get("recipient")
    sender, to = _inbound_numbers(sender, recipient if isinstance(recipient, str) else None)
    sms = InboundSms(
        phone=sender,
        to=to,
        text=text,
        received_at=_parse_date(payload.get("receivedAt")) or utcnow(),
        account_id=device.account_id,
        extra={"device_id": device.id, "sim_card_id": sim_card_id},
        ref=ref,
    )
    try:
        await messages.receive(session, sms, settings=settings)
    except ValidationFailed as exc:
        if exc.field not in ("from", "to"):
            raise
        # An alphanumeric sender ("Google") has no number to store; answering an error
        # would only make the phone send it again, fifteen times.
        log.info("inbound SMS from a sender that is not a number dropped", error=exc.message)


def _inbound_numbers(sender: str, recipient: str | None) -> tuple[str, str | None]:
    """The sender and the receiving SIM's number as Android hands them over, in E.164 where
    they can be read. A sender without ``+`` is international first, as everywhere; when the
    network gave it in national form ("0690156360") it is read in the country of the SIM's
    number. A SIM number in a form we cannot read ("4155550000", Android's line number) is
    left out: it must not cost the message."""
    own = None
    if recipient:
        with contextlib.suppress(InvalidPhoneNumber):
            own = parse_phone(recipient)
    to = own.e164 if own else None
    try:
        return parse_phone(sender).e164, to
    except InvalidPhoneNumber:
        pass
    if own is not None:
        with contextlib.suppress(InvalidPhoneNumber):
            return parse_national(sender, own.region).e164, to
    return sender, to
