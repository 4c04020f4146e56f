"""The native API's verification shapes. The code is never in an answer of this API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textbridge.models import Verification, VerificationStatus

Service = Annotated[
    str,
    StringConstraints(max_length=110, pattern=r"^[\w ]*$"),
    Field(description="Shown in the SMS"),
]


class CreateVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(max_length=64)]
    service: Service = ""
    code_length: int = Field(default=6, ge=4, le=10)
    lifetime_seconds: int | None = Field(default=None, ge=1, le=86_400)
    sender: Annotated[str, StringConstraints(max_length=32)] | None = None
    template: Annotated[str, StringConstraints(max_length=640)] | None = Field(
        default=None, description="The SMS text, with {code} and optionally {service}"
    )


class CheckVerification(BaseModel):
    """Check a code, by ``verification_id`` or by ``phone`` (and ``service``)."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(max_length=16)]
    verification_id: Annotated[str, StringConstraints(max_length=26)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    service: Service = ""


class VerificationOut(BaseModel):
    id: str
    phone: str
    service: str
    status: VerificationStatus
    attempts: int
    sends: int
    message_id: str | None = Field(description="The last code SMS, in /v1/messages")
    expires_at: datetime
    created_at: datetime
    approved_at: datetime | None

    @classmethod
    def of(cls, verification: Verification) -> VerificationOut:
        return cls(
            id=verification.id,
            phone=verification.phone,
            service=verification.service,
            status=VerificationStatus(verification.status),
            attempts=verification.attempts,
            sends=verification.sends,
            message_id=verification.last_message_id,
            expires_at=verification.expires_at,
            created_at=verification.created_at,
            approved_at=verification.approved_at,
        )


class CheckOut(BaseModel):
    valid: bool
    verification: VerificationOut
