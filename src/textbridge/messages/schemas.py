"""The native API's message shapes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textbridge.kit.money import from_micros
from textbridge.models import Direction, Message, MessageSend, MessageStatus, MessageType

Text = Annotated[str, StringConstraints(max_length=100_000)]
Number = Annotated[str, StringConstraints(max_length=64)]
Ids = Annotated[list[Annotated[str, StringConstraints(max_length=26)]], Field(max_length=1000)]


class SendMessage(BaseModel):
    """Send one text to one number or to a list of numbers (one message each)."""

    model_config = ConfigDict(extra="forbid")

    to: Number | list[Number] = Field(
        default_factory=list,
        description="E.164 number, or a list of them",
        examples=["+14155550100"],
    )
    contacts: Ids = Field(default_factory=list, description="Contact ids to send to")
    groups: Ids = Field(
        default_factory=list, description="Group ids: every contact in them, each once"
    )
    text: Text = Field(
        description="The message body; its length decides the segments. A template: "
        "{first_name}, {last_name}, {phone}, {tag} or any custom field of the recipient's "
        "contact, {name|fallback} for a recipient without one, {{ and }} for braces"
    )
    sender: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description="Phone number or alphanumeric sender id (up to 11 characters)"
    )
    type: MessageType = MessageType.PLAIN
    schedule_at: datetime | None = Field(
        default=None, description="Send later (ISO 8601; UTC when no offset is given)"
    )
    ttl_seconds: int | None = Field(
        default=None, ge=1, description="Expire if not delivered within this many seconds"
    )
    custom_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    channel: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None,
        description="Send through this channel (simulator, device); by default the "
        "account's phones if it has any, else the simulator",
    )
    sim_card_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="Send through this SIM of the account's phones"
    )
    media_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="For type mms: the picture's http(s) URL"
    )
    language: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None, description="For type voice: the language to read it in, e.g. en-gb"
    )
    gender: Annotated[str, StringConstraints(max_length=8)] | None = Field(
        default=None, description="For type voice: male or female"
    )

    def type_fields(self) -> dict[str, str | int] | None:
        """The fields of a voice or MMS message and the SIM pinned, as ``SendCommand.extra``."""
        fields = {
            "media_url": self.media_url,
            "language": self.language,
            "gender": self.gender,
            "sim_card_id": self.sim_card_id,
        }
        return {name: value for name, value in fields.items() if value is not None} or None


class AcceptedMessage(BaseModel):
    id: str
    to: str
    status: MessageStatus
    encoding: str
    segments: int
    country: str
    region: str
    price: float
    channel: str | None = Field(
        description="The channel it goes through as routed now: the one named, else device when "
        "the account has phones, else the default (simulator, where it runs: not sent to "
        "anyone). null: none can take it yet; it waits queued with error no_route until one "
        "can or its ttl ends. GET /v1/messages/{id} shows the one it went through"
    )


class SendAnswer(BaseModel):
    batch_id: str
    status: MessageStatus
    count: int
    total_price: float
    messages: list[AcceptedMessage]


class MessageError(BaseModel):
    code: str
    message: str | None


class SendOut(BaseModel):
    """One time the message went to a channel, or may have."""

    attempt: int = Field(description="The attempt it went out on (1 for the first)")
    channel: str | None = Field(description="The channel it was given to")
    channel_ref: str | None = Field(description="The channel's own id for it, when it said one")
    at: datetime = Field(description="When it was sent, or handed over when not acknowledged")
    acknowledged: bool = Field(
        description="The channel said it took it; false when a crash lost the channel's answer "
        "and the message was sent again, so it may have gone out twice"
    )


class MessageOut(BaseModel):
    id: str
    batch_id: str
    direction: Direction
    to: str | None
    from_: str | None = Field(serialization_alias="from")
    type: MessageType
    text: str
    encoding: str
    segments: int
    country: str
    region: str
    price: float
    status: MessageStatus
    custom_id: str | None
    extra: dict[str, Any] | None = Field(
        description="Fields of the message's type and dialect: media_url, language, gender, "
        "sim_card_id, dlt_template_id"
    )
    channel: str | None
    device_id: str | None = Field(default=None, description="The phone it went through")
    sim_card_id: int | None = Field(default=None, description="... and its SIM")
    attempts: int
    error: MessageError | None
    schedule_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    status_times: dict[str, datetime] = Field(
        description="When the message reached each status it has been through"
    )
    sends: list[SendOut] = Field(
        default_factory=list,
        description="Every time it went to a channel, oldest first: more than one means it "
        "may have gone out more than once",
    )

    @classmethod
    def of(cls, message: Message, sends: Sequence[MessageSend] = ()) -> MessageOut:
        outbound = message.direction == Direction.OUT
        times = {
            status.value: moment
            for status in MessageStatus
            if (moment := getattr(message, f"{status.value}_at", None)) is not None
        }
        scheduled = message.due_at if outbound and message.due_at != message.created_at else None
        return cls(
            id=message.id,
            batch_id=message.batch_id,
            direction=Direction(message.direction),
            to=message.phone if outbound else message.sender,
            from_=message.sender if outbound else message.phone,
            type=MessageType(message.type),
            text=message.text,
            encoding=message.encoding,
            segments=message.segments,
            country=message.country,
            region=message.region,
            price=from_micros(message.price_micros),
            status=MessageStatus(message.status),
            custom_id=message.custom_id,
            extra=message.extra,
            channel=message.channel,
            device_id=message.device_id,
            sim_card_id=message.sim_card_id,
            attempts=message.attempts,
            error=(
                MessageError(code=message.error_code, message=message.error_message)
                if message.error_code
                else None
            ),
            schedule_at=scheduled,
            expires_at=message.expires_at,
            created_at=message.created_at,
            status_times=times,
            sends=[
                SendOut(
                    attempt=send.attempt,
                    channel=send.channel,
                    channel_ref=send.channel_ref,
                    at=send.at,
                    acknowledged=send.acknowledged,
                )
                for send in sends
            ],
        )


class MessagePage(BaseModel):
    data: list[MessageOut]
    next_cursor: str | None


class InboundMessage(BaseModel):
    """An SMS arriving from a phone to one of our numbers, injected into the simulator."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Number = Field(alias="from", description="The phone that sent it")
    to: Number | None = Field(default=None, description="Our number it was sent to")
    text: Text


def accepted_message(row: dict[str, Any], channel: str | None) -> AcceptedMessage:
    """One message of a send's answer; ``channel``: the request's route (none for a
    recipient refused at once, who opted out)."""
    return AcceptedMessage(
        id=row["id"],
        to=row["phone"],
        status=row["status"],
        encoding=row["encoding"],
        segments=row["segments"],
        country=row["country"],
        region=row["region"],
        price=from_micros(row["price_micros"]),
        channel=None if row["status"] == MessageStatus.FAILED else channel,
    )


class CreateBulkJob(BaseModel):
    """One text to up to 100,000 recipients, queued behind ordinary traffic."""

    model_config = ConfigDict(extra="forbid")

    to: list[Number] = Field(default_factory=list)
    contacts: Ids = Field(default_factory=list)
    groups: Ids = Field(default_factory=list)
    text: Text = Field(description="A template, as for POST /v1/messages")
    sender: Annotated[str, StringConstraints(max_length=32)] | None = None
    schedule_at: datetime | None = None
    ttl_seconds: int | None = Field(default=None, ge=1)


class BulkJobOut(BaseModel):
    id: str
    source: str
    total: int
    pending: int = Field(description="Recipients not yet handed to a channel")
    by_status: dict[str, int]
    created_at: datetime


class BulkJobPage(BaseModel):
    data: list[BulkJobOut]
    next_cursor: str | None
