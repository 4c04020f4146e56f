"""TextBoost's Contacts API: groups ("contact lists") and the contacts in them, with its own
verbs (POST to read, PATCH to update) and ``{status, data}`` answers.

A TextBoost contact lives in one group; a Textbridge contact is one per phone and may be in
several. So storing a phone that is already a contact adds that contact to the group (and
updates the names sent); reading, updating or deleting a contact through a group it is not in
is "not found"; deleting one deletes the contact, as TextBoost does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal
from textbridge.api.deps import CallerDep, SessionDep
from textbridge.api.routing import make_router
from textbridge.compat.textboost.shapes import PER_PAGE, laravel_page, success
from textbridge.contacts.repository import ContactFilter
from textbridge.contacts.service import ContactView, contacts
from textbridge.errors import NotFound
from textbridge.models import ContactGroup

router = make_router(tags=["TextBoost"])

Page = Annotated[int, Query(ge=1, le=1_000_000)]
Phone = StrictStr | StrictInt  # documented as a number; its own example sends a string
Name = Annotated[StrictStr, Field(max_length=1000)]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone: Phone
    first_name: Name | None = None
    last_name: Name | None = None


def _group(group: ContactGroup, members: int) -> dict[str, Any]:
    return {
        "uid": group.id,
        "name": group.name,
        "contacts": members,
        "created_at": group.created_at.isoformat(),
        "updated_at": group.updated_at.isoformat(),
    }


def _contact(view: ContactView, group_id: str) -> dict[str, Any]:
    contact = view.contact
    return {
        "uid": contact.id,
        "group_id": group_id,
        "phone": contact.phone.removeprefix("+"),
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "status": "unsubscribe" if contact.opted_out_at else "subscribe",
        "tag": contact.tag,
        "custom_fields": contact.fields or {},
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }


async def _member(session: AsyncSession, caller: Principal, group_id: str, uid: str) -> ContactView:
    await contacts.group(session, caller, group_id)
    view = await contacts.view(session, await contacts.get(session, caller, uid))
    if group_id not in view.group_ids:
        raise NotFound(f"no contact {uid} in group {group_id}", field="uid")
    return view


# Groups --------------------------------------------------------------------------------------


@router.post("/v3/contacts", summary="TextBoost: create a contact group")
@router.post("/http/contacts", include_in_schema=False)
async def create_group(body: GroupIn, session: SessionDep, caller: CallerDep) -> Response:
    return success(_group(await contacts.create_group(session, caller, body.name), 0))


@router.get("/v3/contacts", summary="TextBoost: contact groups, by page")
@router.get("/v3/contacts/", include_in_schema=False)
@router.get("/http/contacts", include_in_schema=False)
async def list_groups(session: SessionDep, caller: CallerDep, page: Page = 1) -> Response:
    total = await contacts.count_groups(session, caller)
    groups = await contacts.groups(session, caller, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    counts = await contacts.member_counts(session, [group.id for group in groups])
    return success(laravel_page([_group(g, counts[g.id]) for g in groups], page, total))


@router.post("/v3/contacts/{group_id}/show", summary="TextBoost: one contact group")
@router.post("/v3/contacts/{group_id}/show/", include_in_schema=False)
@router.post("/http/contacts/{group_id}/show", include_in_schema=False)
@router.post("/http/contacts/{group_id}/show/", include_in_schema=False)
async def show_group(group_id: str, session: SessionDep, caller: CallerDep) -> Response:
    group = await contacts.group(session, caller, group_id)
    counts = await contacts.member_counts(session, [group.id])
    return success(_group(group, counts[group.id]))


@router.patch("/v3/contacts/{group_id}", summary="TextBoost: rename a contact group")
@router.patch("/http/contacts/{group_id}", include_in_schema=False)
async def update_group(
    group_id: str, body: GroupIn, session: SessionDep, caller: CallerDep
) -> Response:
    group = await contacts.rename_group(session, caller, group_id, body.name)
    counts = await contacts.member_counts(session, [group.id])
    return success(_group(group, counts[group.id]))


@router.delete("/v3/contacts/{group_id}", summary="TextBoost: delete a contact group")
@router.delete("/http/contacts/{group_id}", include_in_schema=False)
async def delete_group(group_id: str, session: SessionDep, caller: CallerDep) -> Response:
    await contacts.delete_group(session, caller, group_id)
    return success(None)


# Contacts ------------------------------------------------------------------------------------


@router.post("/v3/contacts/{group_id}/store", summary="TextBoost: add a contact to a group")
@router.post("/http/contacts/{group_id}/store", include_in_schema=False)
async def store_contact(
    group_id: str, body: ContactIn, session: SessionDep, caller: CallerDep
) -> Response:
    await contacts.group(session, caller, group_id)
    changes = {"phone": str(body.phone), **body.model_dump(exclude={"phone"}, exclude_unset=True)}
    existing = await contacts.find(session, caller, changes["phone"])
    if existing is None:
        contact = await contacts.create(session, caller, changes, group_ids=[group_id])
    else:
        contact = await contacts.update(session, caller, existing.id, changes)
        await contacts.add_members(session, caller, group_id, [contact.id])
    return success(_contact(await contacts.view(session, contact), group_id))


@router.post("/v3/contacts/{group_id}/search/{uid}", summary="TextBoost: one contact")
@router.post("/http/contacts/{group_id}/search/{uid}", include_in_schema=False)
async def show_contact(group_id: str, uid: str, session: SessionDep, caller: CallerDep) -> Response:
    return success(_contact(await _member(session, caller, group_id, uid), group_id))


@router.patch("/v3/contacts/{group_id}/update/{uid}", summary="TextBoost: update a contact")
@router.patch("/http/contacts/{group_id}/update/{uid}", include_in_schema=False)
async def update_contact(
    group_id: str, uid: str, body: ContactIn, session: SessionDep, caller: CallerDep
) -> Response:
    await _member(session, caller, group_id, uid)
    changes = {"phone": str(body.phone), **body.model_dump(exclude={"phone"}, exclude_unset=True)}
    contact = await contacts.update(session, caller, uid, changes)
    return success(_contact(await contacts.view(session, contact), group_id))


@router.delete("/v3/contacts/{group_id}/delete/{uid}", summary="TextBoost: delete a contact")
@router.delete("/http/contacts/{group_id}/delete/{uid}", include_in_schema=False)
async def delete_contact(
    group_id: str, uid: str, session: SessionDep, caller: CallerDep
) -> Response:
    view = await _member(session, caller, group_id, uid)
    await contacts.delete(session, caller, uid)
    return success(_contact(view, group_id))


@router.post("/v3/contacts/{group_id}/all", summary="TextBoost: a group's contacts, by page")
@router.post("/http/contacts/{group_id}/all", include_in_schema=False)
async def list_contacts(
    group_id: str, session: SessionDep, caller: CallerDep, page: Page = 1
) -> Response:
    where = ContactFilter(group_id=group_id)
    found = await contacts.search(
        session, caller, where, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    total = await contacts.count(session, caller, where)
    views = await contacts.views(session, found)
    return success(laravel_page([_contact(view, group_id) for view in views], page, total))
