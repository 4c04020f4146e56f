"""Contacts and groups: the people an account writes to, their tags, custom values and opt-outs.

One contact per phone number and account. Every rule about a contact's fields lives here, so the
native API, the CSV import and the dialects refuse the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.schemas import settings_of
from textbridge.accounts.service import Principal
from textbridge.contacts.repository import ContactFilter, ContactRepository, Recipient
from textbridge.errors import Conflict, NotFound, ValidationFailed
from textbridge.events.service import EventType, event, record
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.phone import InvalidPhoneNumber, Phone, parse_phone
from textbridge.models import Account, Contact, ContactGroup

# What a template can name besides the custom fields, which therefore cannot use these names.
STANDARD_FIELDS = ("phone", "first_name", "last_name", "tag")
MAX_FIELDS = 50
MAX_FIELD_VALUE = 1000
MAX_NAME = 100
MAX_TAG = 64
FIELD_NAME = regex.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact with its group ids, as the APIs show it."""

    contact: Contact
    group_ids: list[str]


def template_values(contact: Recipient | None, phone: str) -> dict[str, str]:
    """What ``{placeholders}`` in a message to this contact (or bare number) are filled with."""
    values = {"phone": phone}
    if contact is not None:
        values.update(contact.fields or {})
        for name in ("first_name", "last_name", "tag"):
            value = getattr(contact, name)
            if value:
                values[name] = value
    return values


def tag_changed(contact: Contact, old: str | None) -> dict[str, Any]:
    """The event of a contact's tag change, from ``old`` to its tag now."""
    return event(
        account_id=contact.account_id,
        type=EventType.CONTACT_TAG_CHANGED,
        subject_id=contact.id,
        data={
            "contact_id": contact.id,
            "phone": contact.phone,
            "name": contact.name,
            "old_tag": old,
            "tag": contact.tag,
        },
    )


def clean_phone(raw: Any, field: str = "phone") -> Phone:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed(f"{field} is required", field=field)
    try:
        return parse_phone(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(f"{field} {exc}", field=field) from exc


def _clean_text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(f"{field} is {len(value)} characters; at most {limit}", field=field)
    if "\x00" in value:
        raise ValidationFailed(f"{field} must not contain NUL characters", field=field)
    return value or None


def _merge_fields(current: Mapping[str, str], changes: Any) -> dict[str, str]:
    """``changes`` merged into ``current``; a ``null`` value removes that field."""
    if not isinstance(changes, Mapping):
        raise ValidationFailed("fields must be an object of strings", field="fields")
    merged = dict(current)
    for key, value in changes.items():
        where = f"fields.{key}"
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            raise ValidationFailed(
                f"custom field name {str(key)[:70]!r} must be 1-64 letters, digits or _, "
                "starting with a letter or _",
                field="fields",
            )
        if key in STANDARD_FIELDS:
            raise ValidationFailed(f"{key} is a contact's own field, not a custom one", field=where)
        text = _clean_text(value, where, MAX_FIELD_VALUE)
        if text is None:  # null or empty: the field goes
            merged.pop(key, None)
        else:
            merged[key] = text
    if len(merged) > MAX_FIELDS:
        raise ValidationFailed(
            f"{len(merged)} custom fields; a contact has at most {MAX_FIELDS}", field="fields"
        )
    return merged


def clean_changes(changes: Mapping[str, Any], current: Contact | None = None) -> dict[str, Any]:
    """Validated column values for a new contact (``current`` None) or an update."""
    clean: dict[str, Any] = {}
    if "phone" in changes or current is None:
        phone = clean_phone(changes.get("phone"))
        clean["phone"], clean["region"] = phone.e164, phone.region
    for name, limit in (("first_name", MAX_NAME), ("last_name", MAX_NAME), ("tag", MAX_TAG)):
        if name in changes:
            clean[name] = _clean_text(changes[name], name, limit)
    if "fields" in changes:
        clean["fields"] = _merge_fields(current.fields if current else {}, changes["fields"] or {})
    return clean


class ContactService:
    # Contacts ------------------------------------------------------------------------------

    async def get(self, session: AsyncSession, caller: Principal, contact_id: str) -> Contact:
        contact = await ContactRepository(session).get(caller.account_id, contact_id)
        if contact is None:
            raise NotFound(f"no contact {contact_id}", field="id")
        return contact

    async def find(self, session: AsyncSession, caller: Principal, phone: str) -> Contact | None:
        """The contact with this phone, if there is one (400 for a number that is not one)."""
        e164 = clean_phone(phone).e164
        return await ContactRepository(session).by_phone(caller.account_id, e164)

    async def view(self, session: AsyncSession, contact: Contact) -> ContactView:
        groups = await ContactRepository(session).groups_of([contact.id])
        return ContactView(contact, groups[contact.id])

    async def views(self, session: AsyncSession, contacts: Sequence[Contact]) -> list[ContactView]:
        groups = await ContactRepository(session).groups_of([c.id for c in contacts])
        return [ContactView(contact, groups[contact.id]) for contact in contacts]

    async def create(
        self,
        session: AsyncSession,
        caller: Principal,
        changes: Mapping[str, Any],
        *,
        group_ids: Sequence[str] = (),
    ) -> Contact:
        clean = clean_changes(changes)
        repository = ContactRepository(session)
        await _check_groups(repository, caller.account_id, group_ids)
        await self._check_phone_free(repository, caller.account_id, clean["phone"])
        now = utcnow()
        contact = Contact(
            id=new_id(),
            account_id=caller.account_id,
            opted_out_at=now if changes.get("opted_out") else None,
            created_at=now,
            updated_at=now,
            **{"fields": {}, **clean},
        )
        repository.add(contact)
        try:
            await session.flush()
        except IntegrityError as exc:  # created by a concurrent request since the check
            raise Conflict(
                f"a contact already has the phone {contact.phone}", field="phone"
            ) from exc
        if group_ids:
            await repository.set_groups(contact.id, list(dict.fromkeys(group_ids)))
        if contact.tag is not None:
            await self._tag_changed(session, contact, None)
        return contact

    async def update(
        self,
        session: AsyncSession,
        caller: Principal,
        contact_id: str,
        changes: Mapping[str, Any],
        *,
        group_ids: Sequence[str] | None = None,
    ) -> Contact:
        contact = await self.get(session, caller, contact_id)
        clean = clean_changes(changes, contact)
        repository = ContactRepository(session)
        if group_ids is not None:
            await _check_groups(repository, caller.account_id, group_ids)
        if clean.get("phone", contact.phone) != contact.phone:
            await self._check_phone_free(repository, caller.account_id, clean["phone"])
        old_tag = contact.tag
        now = utcnow()
        for name, value in clean.items():
            setattr(contact, name, value)
        opted_out = changes.get("opted_out")
        if opted_out is not None and bool(opted_out) != (contact.opted_out_at is not None):
            contact.opted_out_at = now if opted_out else None
        contact.updated_at = now
        await session.flush()
        if group_ids is not None:
            await repository.set_groups(contact.id, list(dict.fromkeys(group_ids)))
        if contact.tag != old_tag:
            await self._tag_changed(session, contact, old_tag)
        return contact

    async def delete(self, session: AsyncSession, caller: Principal, contact_id: str) -> Contact:
        contact = await self.get(session, caller, contact_id)
        await ContactRepository(session).delete(contact)
        return contact

    async def search(
        self,
        session: AsyncSession,
        caller: Principal,
        where: ContactFilter,
        *,
        before: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> Sequence[Contact]:
        if where.group_id is not None:
            await self.group(session, caller, where.group_id)
        return await ContactRepository(session).search(
            caller.account_id, where, before=before, limit=limit, offset=offset
        )

    async def count(self, session: AsyncSession, caller: Principal, where: ContactFilter) -> int:
        return await ContactRepository(session).count(caller.account_id, where)

    async def set_tag(
        self, session: AsyncSession, caller: Principal, phone: str, tag: str | None
    ) -> Contact:
        """Tag the contact with this phone, creating it if there is none (TextLink's way)."""
        contact = await self.find(session, caller, phone)
        if contact is None:
            return await self.create(session, caller, {"phone": phone, "tag": tag})
        return await self.update(session, caller, contact.id, {"tag": tag})

    async def _tag_changed(self, session: AsyncSession, contact: Contact, old: str | None) -> None:
        await record(session, [tag_changed(contact, old)])

    async def _check_phone_free(
        self, repository: ContactRepository, account_id: str, phone: str
    ) -> None:
        existing = await repository.by_phone(account_id, phone)
        if existing is not None:
            raise Conflict(f"contact {existing.id} already has the phone {phone}", field="phone")

    # Opt-outs ------------------------------------------------------------------------------

    async def apply_keyword(
        self, session: AsyncSession, account: Account, phone: Phone, text: str, at: datetime
    ) -> bool | None:
        """An inbound STOP (or START) from ``phone``: opt it out (or back in), creating the
        contact if needed. Answers the new opted-out state, or ``None`` if ``text`` is not one
        of the account's keywords."""
        word = text.strip().strip(".!").upper()
        if not word or len(word) > 32:
            return None
        settings = settings_of(account)
        if word in settings.opt_out_keywords:
            opted_out: bool = True
        elif word in settings.opt_in_keywords:
            opted_out = False
        else:
            return None
        # Statements that cannot collide with a contact created at the same moment (an API call,
        # another inbound): the contact is made if missing, then its state set if different.
        repository = ContactRepository(session)
        await repository.insert_if_missing(
            {
                "id": new_id(),
                "account_id": account.id,
                "phone": phone.e164,
                "region": phone.region,
                "fields": {},
                "created_at": at,
                "updated_at": at,
            }
        )
        await repository.set_opt_out(account.id, phone.e164, opted_out=opted_out, at=at)
        return opted_out

    # Groups --------------------------------------------------------------------------------

    async def group(self, session: AsyncSession, caller: Principal, group_id: str) -> ContactGroup:
        group = await ContactRepository(session).group(caller.account_id, group_id)
        if group is None:
            raise NotFound(f"no group {group_id}", field="group_id")
        return group

    async def create_group(
        self, session: AsyncSession, caller: Principal, name: Any
    ) -> ContactGroup:
        now = utcnow()
        group = ContactGroup(
            id=new_id(),
            account_id=caller.account_id,
            name=_group_name(name),
            created_at=now,
            updated_at=now,
        )
        ContactRepository(session).add_group(group)
        await session.flush()
        return group

    async def rename_group(
        self, session: AsyncSession, caller: Principal, group_id: str, name: Any
    ) -> ContactGroup:
        group = await self.group(session, caller, group_id)
        group.name = _group_name(name)
        group.updated_at = utcnow()
        await session.flush()
        return group

    async def delete_group(
        self, session: AsyncSession, caller: Principal, group_id: str
    ) -> ContactGroup:
        """The group goes; its contacts stay."""
        group = await self.group(session, caller, group_id)
        await ContactRepository(session).delete_group(group)
        return group

    async def groups(
        self,
        session: AsyncSession,
        caller: Principal,
        *,
        search: str | None = None,
        before: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> Sequence[ContactGroup]:
        return await ContactRepository(session).groups(
            caller.account_id, search=search, before=before, limit=limit, offset=offset
        )

    async def count_groups(self, session: AsyncSession, caller: Principal) -> int:
        return await ContactRepository(session).count_groups(caller.account_id)

    async def member_counts(
        self, session: AsyncSession, group_ids: Sequence[str]
    ) -> dict[str, int]:
        counts = await ContactRepository(session).member_counts(group_ids)
        return {group_id: counts.get(group_id, 0) for group_id in group_ids}

    async def add_members(
        self, session: AsyncSession, caller: Principal, group_id: str, contact_ids: Sequence[str]
    ) -> None:
        await self.group(session, caller, group_id)
        repository = ContactRepository(session)
        await _check_contacts(repository, caller.account_id, contact_ids, "contact_ids")
        await repository.add_members(group_id, dict.fromkeys(contact_ids))

    async def remove_member(
        self, session: AsyncSession, caller: Principal, group_id: str, contact_id: str
    ) -> None:
        await self.group(session, caller, group_id)
        removed = await ContactRepository(session).remove_members(group_id, [contact_id])
        if not removed:
            raise NotFound(f"contact {contact_id} is not in group {group_id}", field="contact_id")

    # Recipients of a message ---------------------------------------------------------------

    async def recipients(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        contact_ids: Sequence[str],
        group_ids: Sequence[str],
    ) -> list[Recipient]:
        """The contacts a message names by id; the groups it names are checked (404 for a
        contact or group not found), their members read page by page with ``members``."""
        repository = ContactRepository(session)
        found = await _check_contacts(repository, account_id, contact_ids, "contacts")
        await _check_groups(repository, account_id, group_ids)
        return [found[contact_id] for contact_id in dict.fromkeys(contact_ids)]

    async def members(
        self,
        session: AsyncSession,
        account_id: str,
        group_ids: Sequence[str],
        *,
        after: str | None,
        limit: int,
    ) -> list[Recipient]:
        """A page of the contacts in any of the groups, each once, in id order: those after
        the contact id ``after``, up to ``limit``."""
        return await ContactRepository(session).members(
            account_id, group_ids, after=after, limit=limit
        )

    async def recipients_by_phone(
        self, session: AsyncSession, account_id: str, phones: Sequence[str]
    ) -> dict[str, Recipient]:
        return await ContactRepository(session).recipients_by_phone(account_id, phones)

    async def opted_out(
        self, session: AsyncSession, account_id: str, phones: Sequence[str]
    ) -> set[str]:
        return await ContactRepository(session).opted_out(account_id, phones)


async def _check_groups(
    repository: ContactRepository, account_id: str, group_ids: Sequence[str]
) -> None:
    """404, naming ``groups[i]``, for the first group the account does not have."""
    for index, group_id in enumerate(group_ids):
        if await repository.group(account_id, group_id) is None:
            raise NotFound(f"no group {group_id}", field=f"groups[{index}]")


async def _check_contacts(
    repository: ContactRepository, account_id: str, contact_ids: Sequence[str], field: str
) -> dict[str, Recipient]:
    """The account's contacts by id; 404, naming ``<field>[i]``, for the first it lacks."""
    found = await repository.recipients_by_ids(account_id, contact_ids)
    for index, contact_id in enumerate(contact_ids):
        if contact_id not in found:
            raise NotFound(f"no contact {contact_id}", field=f"{field}[{index}]")
    return found


def _group_name(name: Any) -> str:
    clean = _clean_text(name, "name", MAX_NAME)
    if clean is None:
        raise ValidationFailed("name is required", field="name")
    return clean


contacts = ContactService()
