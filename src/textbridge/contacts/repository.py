"""All SQL for contacts and groups. Every query names the account: another account's contact or
group is simply not found."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db.upsert import insert_on_conflict
from textbridge.models import Contact, ContactGroup, GroupMember

CONTACTS = cast(Table, Contact.__table__)
_MEMBERS = cast(Table, GroupMember.__table__)
_CHUNK = 500  # ids or phones per IN list: well under every database's bound-parameter limit
_MANY_OPT_OUTS = 2000

T = TypeVar("T")


def _ids(values: Iterable[str]) -> list[str]:
    """The values that can be ids at all (ULIDs): anything else, a NUL that PostgreSQL would
    refuse to compare included, is simply not found."""
    return [value for value in values if value.isascii() and value.isalnum()]


def chunked(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a message to a contact needs of it: where it goes and what fills its template."""

    id: str
    phone: str
    region: str
    first_name: str | None
    last_name: str | None
    tag: str | None
    fields: dict[str, str]


_RECIPIENT = select(
    CONTACTS.c.id,
    CONTACTS.c.phone,
    CONTACTS.c.region,
    CONTACTS.c.first_name,
    CONTACTS.c.last_name,
    CONTACTS.c.tag,
    CONTACTS.c.fields,
)


@dataclass(frozen=True, slots=True)
class ContactFilter:
    search: str | None = None  # in the phone, the name or the tag
    group_id: str | None = None
    tag: str | None = None
    opted_out: bool | None = None


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Contacts ------------------------------------------------------------------------------

    def add(self, contact: Contact) -> None:
        self.session.add(contact)

    async def get(self, account_id: str, contact_id: str) -> Contact | None:
        if not _ids([contact_id]):
            return None
        result = await self.session.execute(
            select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def by_phone(self, account_id: str, phone: str) -> Contact | None:
        result = await self.session.execute(
            select(Contact).where(Contact.account_id == account_id, Contact.phone == phone)
        )
        return result.scalar_one_or_none()

    async def by_phones(self, account_id: str, phones: Sequence[str]) -> dict[str, Contact]:
        found: dict[str, Contact] = {}
        for part in chunked(phones):
            result = await self.session.execute(
                select(Contact).where(Contact.account_id == account_id, Contact.phone.in_(part))
            )
            found.update((contact.phone, contact) for contact in result.scalars())
        return found

    async def search(
        self, account_id: str, where: ContactFilter, *, before: str | None, limit: int, offset: int
    ) -> Sequence[Contact]:
        """Newest first."""
        query = self._filtered(select(Contact), account_id, where)
        if before is not None:
            query = query.where(Contact.id < before)
        result = await self.session.execute(
            query.order_by(Contact.id.desc()).offset(offset).limit(limit)
        )
        return result.scalars().all()

    async def count(self, account_id: str, where: ContactFilter) -> int:
        query = self._filtered(select(func.count()).select_from(Contact), account_id, where)
        return int((await self.session.execute(query)).scalar_one())

    @staticmethod
    def _filtered(query: Any, account_id: str, where: ContactFilter) -> Any:
        query = query.where(Contact.account_id == account_id)
        if where.group_id is not None:
            query = query.where(
                Contact.id.in_(
                    select(GroupMember.contact_id).where(GroupMember.group_id == where.group_id)
                )
            )
        if where.tag is not None:
            query = query.where(Contact.tag == where.tag)
        if where.opted_out is not None:
            opted_out = Contact.opted_out_at.is_not(None)
            query = query.where(opted_out if where.opted_out else ~opted_out)
        if where.search:
            term = where.search
            full_name = (
                func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, "")
            )
            query = query.where(
                or_(
                    Contact.phone.contains(term.lstrip("+").replace(" ", ""), autoescape=True),
                    full_name.icontains(term, autoescape=True),
                    Contact.tag.icontains(term, autoescape=True),
                )
            )
        return query

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            connection = await self.session.connection()
            await connection.execute(insert(CONTACTS), list(rows))

    async def update_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rewrite the given columns of contacts by id (``b_id``); rows of one shape."""
        if not rows:
            return
        connection = await self.session.connection()
        columns: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "b_id"}
        await connection.execute(
            update(CONTACTS).where(CONTACTS.c.id == bindparam("b_id")).values(columns),
            list(rows),
        )

    async def insert_if_missing(self, row: dict[str, Any]) -> None:
        statement = insert_on_conflict(self.session, CONTACTS).on_conflict_do_nothing()
        await self.session.execute(statement, [row])

    async def set_opt_out(
        self, account_id: str, phone: str, *, opted_out: bool, at: datetime
    ) -> None:
        """Opt the phone out (keeping the first opt-out's time) or back in."""
        current = CONTACTS.c.opted_out_at
        await self.session.execute(
            update(CONTACTS)
            .where(
                CONTACTS.c.account_id == account_id,
                CONTACTS.c.phone == phone,
                current.is_(None) if opted_out else current.is_not(None),
            )
            .values(opted_out_at=at if opted_out else None, updated_at=at)
        )

    async def opted_out(self, account_id: str, phones: Sequence[str]) -> set[str]:
        """Which of ``phones`` have opted out of the account's messages.

        An account's opt-outs are usually few: read them all at once (one indexed query,
        whatever the number of phones) and look up in memory; only an account with more than
        ``_MANY_OPT_OUTS`` is asked phone by phone, 500 at a time."""
        opted_out = CONTACTS.c.opted_out_at.is_not(None)
        result = await self.session.execute(
            select(CONTACTS.c.phone)
            .where(CONTACTS.c.account_id == account_id, opted_out)
            .limit(_MANY_OPT_OUTS + 1)
        )
        everyone = set(result.scalars())
        if len(everyone) <= _MANY_OPT_OUTS:
            return everyone.intersection(phones)
        found: set[str] = set()
        for part in chunked(phones):
            result = await self.session.execute(
                select(CONTACTS.c.phone).where(
                    CONTACTS.c.account_id == account_id, CONTACTS.c.phone.in_(part), opted_out
                )
            )
            found.update(result.scalars())
        return found

    async def delete(self, contact: Contact) -> None:
        await self.session.execute(delete(Contact).where(Contact.id == contact.id))

    # Groups --------------------------------------------------------------------------------

    def add_group(self, group: ContactGroup) -> None:
        self.session.add(group)

    async def group(self, account_id: str, group_id: str) -> ContactGroup | None:
        if not _ids([group_id]):
            return None
        result = await self.session.execute(
            select(ContactGroup).where(
                ContactGroup.id == group_id, ContactGroup.account_id == account_id
            )
        )
        return result.scalar_one_or_none()

    async def groups(
        self, account_id: str, *, search: str | None, before: str | None, limit: int, offset: int
    ) -> Sequence[ContactGroup]:
        query = select(ContactGroup).where(ContactGroup.account_id == account_id)
        if search:
            query = query.where(ContactGroup.name.icontains(search, autoescape=True))
        if before is not None:
            query = query.where(ContactGroup.id < before)
        result = await self.session.execute(
            query.order_by(ContactGroup.id.desc()).offset(offset).limit(limit)
        )
        return result.scalars().all()

    async def count_groups(self, account_id: str) -> int:
        query = select(func.count()).where(ContactGroup.account_id == account_id)
        return int((await self.session.execute(query)).scalar_one())

    async def delete_group(self, group: ContactGroup) -> None:
        await self.session.execute(delete(ContactGroup).where(ContactGroup.id == group.id))

    async def member_counts(self, group_ids: Sequence[str]) -> dict[str, int]:
        if not group_ids:
            return {}
        result = await self.session.execute(
            select(GroupMember.group_id, func.count())
            .where(GroupMember.group_id.in_(group_ids))
            .group_by(GroupMember.group_id)
        )
        return {group_id: int(count) for group_id, count in result}

    async def groups_of(self, contact_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each contact's group ids."""
        found: dict[str, list[str]] = {contact_id: [] for contact_id in contact_ids}
        for part in chunked(contact_ids):
            result = await self.session.execute(
                select(GroupMember.contact_id, GroupMember.group_id)
                .where(GroupMember.contact_id.in_(part))
                .order_by(GroupMember.group_id)
            )
            for contact_id, group_id in result:
                found[contact_id].append(group_id)
        return found

    async def add_members(self, group_id: str, contact_ids: Iterable[str]) -> None:
        rows = [{"group_id": group_id, "contact_id": contact_id} for contact_id in contact_ids]
        for part in chunked(rows):
            await self.session.execute(
                insert_on_conflict(self.session, _MEMBERS).on_conflict_do_nothing(), list(part)
            )

    async def remove_members(self, group_id: str, contact_ids: Sequence[str]) -> int:
        removed = 0
        for part in chunked(contact_ids):
            result = await self.session.execute(
                delete(_MEMBERS).where(
                    _MEMBERS.c.group_id == group_id, _MEMBERS.c.contact_id.in_(part)
                )
            )
            removed += cast(int, getattr(result, "rowcount", 0))
        return removed

    async def set_groups(self, contact_id: str, group_ids: Sequence[str]) -> None:
        await self.session.execute(delete(_MEMBERS).where(_MEMBERS.c.contact_id == contact_id))
        if group_ids:
            await self.session.execute(
                insert(_MEMBERS),
                [{"group_id": group_id, "contact_id": contact_id} for group_id in group_ids],
            )

    # Recipients of a message: plain rows, read by the hundred thousand -----------------------

    async def members(
        self, account_id: str, group_ids: Sequence[str], *, after: str | None, limit: int
    ) -> list[Recipient]:
        """The contacts in any of the groups, each once, oldest first: up to ``limit`` of those
        after the contact id ``after``."""
        query = _RECIPIENT.where(
            CONTACTS.c.account_id == account_id,
            CONTACTS.c.id.in_(
                select(_MEMBERS.c.contact_id).where(_MEMBERS.c.group_id.in_(group_ids))
            ),
        )
        if after is not None:
            query = query.where(CONTACTS.c.id > after)
        result = await self.session.execute(query.order_by(CONTACTS.c.id).limit(limit))
        return [Recipient(*row) for row in result]

    async def recipients_by_ids(self, account_id: str, ids: Sequence[str]) -> dict[str, Recipient]:
        found: dict[str, Recipient] = {}
        for part in chunked(_ids(ids)):
            result = await self.session.execute(
                _RECIPIENT.where(CONTACTS.c.account_id == account_id, CONTACTS.c.id.in_(part))
            )
            found.update((row.id, Recipient(*row)) for row in result)
        return found

    async def recipients_by_phone(
        self, account_id: str, phones: Sequence[str]
    ) -> dict[str, Recipient]:
        found: dict[str, Recipient] = {}
        for part in chunked(phones):
            result = await self.session.execute(
                _RECIPIENT.where(CONTACTS.c.account_id == account_id, CONTACTS.c.phone.in_(part))
            )
            found.update((row.phone, Recipient(*row)) for row in result)
        return found
