"""Native API: the account's phones, their SIM cards, and pairing a new phone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from textbridge.api.deps import CallerDep, SessionDep, SettingsDep
from textbridge.api.routing import make_router
from textbridge.devices.service import devices, online
from textbridge.kit.clock import utcnow
from textbridge.models import Device, SimCard
from textbridge.settings import Settings

router = make_router(tags=["devices"])

Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class PairingOut(BaseModel):
    token: str = Field(description="For the app's registration (Bearer): its private token")
    code: str = Field(description="A one-time code that adds one phone (Code), for 10 minutes")
    expires_at: datetime = Field(description="Until when the token registers phones")


class SimCardOut(BaseModel):
    id: int = Field(description="sim_card_id in any dialect")
    device_id: str
    sim_number: int
    slot_index: int | None
    phone_number: str | None
    carrier_name: str | None
    present: bool = Field(description="In the phone's last report")
    enabled: bool
    per_minute: int | None
    per_day: int | None
    work_start: str | None
    work_end: str | None

    @classmethod
    def of(cls, sim: SimCard) -> SimCardOut:
        return cls.model_validate(sim, from_attributes=True)


class DeviceOut(BaseModel):
    id: str
    name: str
    enabled: bool
    online: bool = Field(description="Seen within DEVICE_ONLINE_SECONDS")
    last_seen_at: datetime | None
    sim_cards: list[SimCardOut]
    created_at: datetime

    @classmethod
    def of(cls, device: Device, sims: list[SimCard], settings: Settings) -> DeviceOut:
        return cls(
            id=device.id,
            name=device.name,
            enabled=device.enabled,
            online=online(device.last_seen_at, settings, utcnow()),
            last_seen_at=device.last_seen_at,
            sim_cards=[SimCardOut.of(sim) for sim in sims],
            created_at=device.created_at,
        )


class DevicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    enabled: bool | None = None


class SimCardPatch(BaseModel):
    """Only the fields sent change; null clears a limit or the work hours."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | SkipJsonSchema[None] = None
    per_minute: Annotated[int, Field(ge=1, le=10_000)] | None = None
    per_day: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    work_start: Clock | None = Field(default=None, description="HH:MM, UTC")
    work_end: Clock | None = None

    @field_validator("enabled")
    @classmethod
    def _enabled_or_not(cls, value: bool | None) -> bool | None:
        # Checked only when sent. Null clears a limit, but a SIM is always enabled or not:
        # null would reach the NOT NULL column.
        if value is None:
            raise PydanticCustomError("bool_type", "must be true or false, not null")
        return value


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ExportIn:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


@router.post("/v1/devices/pairing", status_code=201, response_model=PairingOut)
async def pair(session: SessionDep, caller: CallerDep, settings: SettingsDep) -> PairingOut:
    """What the app needs to join this account: a private token and a one-time code."""
    pairing = await devices.pair(session, caller, settings)
    return PairingOut(token=pairing.token, code=pairing.code, expires_at=pairing.expires_at)


@router.get("/v1/devices", response_model=list[DeviceOut])
async def list_devices(
    session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> list[DeviceOut]:
    found, sims = await devices.devices(session, caller)
    return [DeviceOut.of(d, sims[d.id], settings) for d in found]


@router.patch("/v1/devices/{device_id}", response_model=DeviceOut)
async def update_device(
    device_id: str,
    body: DevicePatch,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
) -> DeviceOut:
    """Rename, or disable (its token stops working; its messages go to other SIMs)."""
    device = await devices.update(session, caller, device_id, body.model_dump(exclude_none=True))
    _, sims = await devices.devices(session, caller)
    return DeviceOut.of(device, sims.get(device.id, []), settings)


@router.delete("/v1/devices/{device_id}", status_code=204)
async def delete_device(device_id: str, session: SessionDep, caller: CallerDep) -> Response:
    await devices.delete(session, caller, device_id)
    return Response(status_code=204)


@router.post("/v1/devices/{device_id}/export", status_code=202)
async def export_inbox(
    device_id: str, body: ExportIn, session: SessionDep, caller: CallerDep
) -> Response:
    """Ask the phone to send again the SMS it received between ``since`` and ``until`` (the
    app's ``MessagesExportRequested``): they come as its ``sms:received`` events, and one
    already stored is kept once. For SMS received while the server could not be reached."""
    await devices.request_export(session, caller, device_id, body.since, body.until)
    return Response(status_code=202)


@router.get("/v1/sim-cards", response_model=list[SimCardOut])
async def list_sim_cards(session: SessionDep, caller: CallerDep) -> list[SimCardOut]:
    return [SimCardOut.of(sim) for sim in await devices.sim_cards(session, caller)]


@router.patch("/v1/sim-cards/{sim_card_id}", response_model=SimCardOut)
async def update_sim_card(
    sim_card_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: SimCardPatch,
    session: SessionDep,
    caller: CallerDep,
) -> SimCardOut:
    """Limits (per minute, per day; null: none), work hours, enabled."""
    changes = body.model_dump(exclude_unset=True)
    sim = await devices.update_sim(session, caller, sim_card_id, changes)
    return SimCardOut.of(sim)
