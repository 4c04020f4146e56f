"""The native API's contact and group shapes. Lengths and names are checked by the service
(the CSV import and the dialects share its rules); these only bound what is read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textbridge.contacts.service import ContactView
from textbridge.models import ContactGroup

Short = Annotated[str, StringConstraints(max_length=1000)]
Id = Annotated[str, StringConstraints(max_length=26)]
Ids = Annotated[list[Id], Field(max_length=1000)]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(max_length=64)] = Field(examples=["+14155550100"])
    first_name: Short | None = None
    last_name: Short | None = None
    tag: Short | None = Field(default=None, description="e.g. cold, warm, VIP")
    fields: Annotated[
        dict[Annotated[str, StringConstraints(max_length=100)], Short], Field(max_length=100)
    ] = Field(
        default_factory=dict,
        description='Custom values for templates, e.g. {"city": "Lisbon"} for {city}',
    )
    groups: Ids = Field(default_factory=list, description="Ids of the groups it belongs to")
    opted_out: bool = False


class ContactPatch(BaseModel):
    """Only the fields sent change. ``fields`` merges: a field set to null is removed."""

    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    first_name: Short | None = None
    last_name: Short | None = None
    tag: Short | None = None
    fields: (
        Annotated[
            dict[Annotated[str, StringConstraints(max_length=100)], Short | None],
            Field(max_length=100),
        ]
        | None
    ) = None
    groups: Ids | None = Field(default=None, description="Replaces the memberships")
    opted_out: bool | None = None


class ContactOut(BaseModel):
    id: str
    phone: str
    first_name: str | None
    last_name: str | None
    tag: str | None
    fields: dict[str, str]
    groups: list[str]
    opted_out: bool
    opted_out_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: ContactView) -> ContactOut:
        contact = view.contact
        return cls(
            id=contact.id,
            phone=contact.phone,
            first_name=contact.first_name,
            last_name=contact.last_name,
            tag=contact.tag,
            fields=contact.fields or {},
            groups=view.group_ids,
            opted_out=contact.opted_out_at is not None,
            opted_out_at=contact.opted_out_at,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )


class ContactPage(BaseModel):
    data: list[ContactOut]
    next_cursor: str | None


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    message: str


class ImportOut(BaseModel):
    rows: int = Field(description="Rows read, not counting the header and blank lines")
    created: int
    updated: int
    failed: int
    errors: list[RowErrorOut] = Field(description="The first 1,000 rows refused, by line")


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short


class GroupOut(BaseModel):
    id: str
    name: str
    contacts: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, group: ContactGroup, members: int) -> GroupOut:
        return cls(
            id=group.id,
            name=group.name,
            contacts=members,
            created_at=group.created_at,
            updated_at=group.updated_at,
        )


class GroupPage(BaseModel):
    data: list[GroupOut]
    next_cursor: str | None


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_ids: Annotated[list[Id], Field(min_length=1, max_length=10_000)]
