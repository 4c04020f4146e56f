"""Native API: contacts and groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.contacts import transfer
from textbridge.contacts.repository import ContactFilter
from textbridge.contacts.schemas import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    GroupIn,
    GroupOut,
    GroupPage,
    ImportOut,
    Members,
)
from textbridge.contacts.service import contacts

router = make_router(prefix="/v1", tags=["contacts"])

Search = Annotated[str | None, Query(max_length=100, description="In the phone, name or tag")]
GroupId = Annotated[str | None, Query(max_length=26)]


@router.post("/contacts", status_code=201, response_model=ContactOut)
async def create_contact(body: ContactIn, session: SessionDep, caller: CallerDep) -> ContactOut:
    """A new contact; another with the same phone is a 409."""
    contact = await contacts.create(
        session, caller, body.model_dump(exclude={"groups"}), group_ids=body.groups
    )
    return ContactOut.of(await contacts.view(session, contact))


@router.get("/contacts", response_model=ContactPage)
async def list_contacts(
    session: SessionDep,
    caller: CallerDep,
    page: PageDep,
    search: Search = None,
    group_id: GroupId = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    opted_out: bool | None = None,
) -> ContactPage:
    """Newest first."""
    found = await contacts.search(
        session,
        caller,
        ContactFilter(search=search, group_id=group_id, tag=tag, opted_out=opted_out),
        before=page.before,
        limit=page.fetch,
    )
    views = await contacts.views(session, found[: page.limit])
    return ContactPage(data=[ContactOut.of(v) for v in views], next_cursor=page.next_cursor(found))


@router.post("/contacts/import", response_model=ImportOut)
async def import_contacts(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
    group_id: GroupId = None,
) -> ImportOut:
    """A CSV file as the body (UTF-8, header line naming ``phone`` and any of ``first_name``,
    ``last_name``, ``tag``, ``opted_out_at``; other columns are custom fields). Good rows are
    kept, bad ones reported by line. ``group_id`` adds every imported contact to that group."""
    report = await transfer.import_csv(
        session,
        caller,
        await request.body(),
        group_id=group_id,
        max_rows=runtime.settings.max_import_rows,
    )
    return ImportOut.model_validate(report, from_attributes=True)


@router.get("/contacts/export", response_class=Response)
async def export_contacts(
    session: SessionDep, caller: CallerDep, group_id: GroupId = None
) -> Response:
    """Every contact (of ``group_id``) as CSV, in the columns the import reads."""
    body = await transfer.export_csv(session, caller, group_id=group_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="contacts.csv"'},
    )


@router.get("/contacts/{contact_id}", response_model=ContactOut)
async def get_contact(contact_id: str, session: SessionDep, caller: CallerDep) -> ContactOut:
    return ContactOut.of(
        await contacts.view(session, await contacts.get(session, caller, contact_id))
    )


@router.patch("/contacts/{contact_id}", response_model=ContactOut)
async def update_contact(
    contact_id: str, body: ContactPatch, session: SessionDep, caller: CallerDep
) -> ContactOut:
    """Change what is sent; ``fields`` merges (null removes a field), ``groups`` replaces."""
    changes = body.model_dump(exclude_unset=True, exclude={"groups"})
    contact = await contacts.update(session, caller, contact_id, changes, group_ids=body.groups)
    return ContactOut.of(await contacts.view(session, contact))


@router.delete("/contacts/{contact_id}", status_code=204)
async def delete_contact(contact_id: str, session: SessionDep, caller: CallerDep) -> Response:
    await contacts.delete(session, caller, contact_id)
    return Response(status_code=204)


@router.post("/groups", status_code=201, response_model=GroupOut)
async def create_group(body: GroupIn, session: SessionDep, caller: CallerDep) -> GroupOut:
    return GroupOut.of(await contacts.create_group(session, caller, body.name), 0)


@router.get("/groups", response_model=GroupPage)
async def list_groups(
    session: SessionDep, caller: CallerDep, page: PageDep, search: Search = None
) -> GroupPage:
    """Newest first, each with its number of contacts."""
    groups = await contacts.groups(
        session, caller, search=search, before=page.before, limit=page.fetch
    )
    shown = groups[: page.limit]
    counts = await contacts.member_counts(session, [group.id for group in shown])
    return GroupPage(
        data=[GroupOut.of(group, counts[group.id]) for group in shown],
        next_cursor=page.next_cursor(groups),
    )


@router.get("/groups/{group_id}", response_model=GroupOut)
async def get_group(group_id: str, session: SessionDep, caller: CallerDep) -> GroupOut:
    group = await contacts.group(session, caller, group_id)
    counts = await contacts.member_counts(session, [group.id])
    return GroupOut.of(group, counts[group.id])


@router.patch("/groups/{group_id}", response_model=GroupOut)
async def rename_group(
    group_id: str, body: GroupIn, session: SessionDep, caller: CallerDep
) -> GroupOut:
    group = await contacts.rename_group(session, caller, group_id, body.name)
    counts = await contacts.member_counts(session, [group.id])
    return GroupOut.of(group, counts[group.id])


@router.delete("/groups/{group_id}", status_code=204)
async def delete_group(group_id: str, session: SessionDep, caller: CallerDep) -> Response:
    """The group goes; its contacts stay."""
    await contacts.delete_group(session, caller, group_id)
    return Response(status_code=204)


@router.get("/groups/{group_id}/contacts", response_model=ContactPage)
async def list_members(
    group_id: str, session: SessionDep, caller: CallerDep, page: PageDep, search: Search = None
) -> ContactPage:
    return await list_contacts(session, caller, page, search=search, group_id=group_id)


@router.post("/groups/{group_id}/contacts", response_model=GroupOut)
async def add_members(
    group_id: str, body: Members, session: SessionDep, caller: CallerDep
) -> GroupOut:
    """Add contacts to the group (those already in it stay once)."""
    await contacts.add_members(session, caller, group_id, body.contact_ids)
    return await get_group(group_id, session, caller)


@router.delete("/groups/{group_id}/contacts/{contact_id}", status_code=204)
async def remove_member(
    group_id: str, contact_id: str, session: SessionDep, caller: CallerDep
) -> Response:
    await contacts.remove_member(session, caller, group_id, contact_id)
    return Response(status_code=204)
