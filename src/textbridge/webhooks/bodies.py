"""What a webhook request carries, in each format an endpoint can ask for.

``native``: ``{id, type, created_at, data}``; a message event's data is the message as the API
shows it, at the event's status. ``textlink``: TextLink's four documented bodies
(../shared/seeds/textlink-webhooks.txt), field for field, with the endpoint's secret in the body
as TextLink sends it. Both are signed the same way in the headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from textbridge.messages.schemas import MessageOut
from textbridge.models import Message

NATIVE = "native"
TEXTLINK = "textlink"
FORMATS = (NATIVE, TEXTLINK)

# TextLink's four account-level URLs, and the events each one gets. A message that expires has
# failed, as far as a TextLink receiver knows.
TEXTLINK_HOOKS: dict[str, tuple[str, ...]] = {
    "received": ("message.received",),
    "sent": ("message.sent",),
    "failed": ("message.failed", "message.expired"),
    "tag": ("contact.tag_changed",),
}
TEXTLINK_EVENTS = frozenset(kind for kinds in TEXTLINK_HOOKS.values() for kind in kinds)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about, read when it is sent: the message, and its phone's contact."""

    message: Message | None = None
    contact_name: str | None = None
    contact_tag: str | None = None
    subuser_id: str | None = None  # the account, when it is a sub-account


def render(
    format: str,
    event_id: str,
    kind: str,
    at: datetime,
    data: dict[str, Any],
    subject: Subject,
    secret: str,
) -> bytes:
    if format == TEXTLINK:
        return textlink(kind, at, data, subject, secret)
    return native(event_id, kind, at, data, subject)


def native(event_id: str, kind: str, at: datetime, data: dict[str, Any], subject: Subject) -> bytes:
    if subject.message is not None:
        data = {**MessageOut.of(subject.message).model_dump(mode="json", by_alias=True), **data}
    return orjson.dumps({"id": event_id, "type": kind, "created_at": at.isoformat(), "data": data})


def textlink(kind: str, at: datetime, data: dict[str, Any], subject: Subject, secret: str) -> bytes:
    """TextLink's body for ``kind`` (one of ``TEXTLINK_EVENTS``). Its documents put the secret
    in every request ("we will send it to you in each request") and its sample receiver answers
    401 without it, so the tag change carries it too although its sample body does not."""
    timestamp = int(at.timestamp() * 1000)  # TextLink's: milliseconds
    body: dict[str, Any] = {"secret": secret}
    if kind == "contact.tag_changed":
        body.update(name=data.get("name"), phone_number=data.get("phone"), tag=data.get("tag"))
        if subject.subuser_id is not None:
            body["subuser_id"] = subject.subuser_id
        return orjson.dumps(body)
    message = subject.message
    if message is None:  # the message is gone: say what the event knows
        body.update(phone_number=data.get("phone"), text=data.get("text"))
        extra: dict[str, Any] = {}
    else:
        body.update(phone_number=message.phone, text=message.text)
        extra = message.extra or {}
    if kind == "message.received":
        body.update(tag=subject.contact_tag, name=subject.contact_name, timestamp=timestamp)
        return orjson.dumps(body)
    body.update(portal=bool(extra.get("portal", False)), timestamp=timestamp)
    if kind != "message.sent":
        body.update(
            textlink_id=message.id if message else data.get("id"),
            custom_id=message.custom_id if message else data.get("custom_id"),
        )
    # The SIM that sent it; else the one the request pinned.
    used = message.sim_card_id if message is not None else None
    body["sim_card_id"] = used if used is not None else extra.get("sim_card_id")
    return orjson.dumps(body)
