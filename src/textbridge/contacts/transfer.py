"""Contacts in and out as CSV.

Import keeps every good row and reports every bad one by its line: a file whose shape is wrong
(not UTF-8, no ``phone`` column, a malformed header) is refused whole, before anything is
written. A phone already in the account updates that contact: non-empty cells overwrite, custom
fields merge. ``phone``, ``first_name``, ``last_name``, ``tag`` and ``opted_out_at`` are the
contact's own columns; every other column is a custom field. Export writes the same columns, so
an export imports back unchanged.

A tag changed on an existing contact is a ``contact.tag_changed`` event, as through the API;
contacts the import creates fire none (an import of 100,000 tagged contacts is not 100,000 tag
changes anyone wants a webhook for).

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: a name like ``=HYPERLINK(...)`` would run on the machine of
whoever opens the export. So the export writes such a text value after a single quote, as
OWASP advises (the spreadsheet shows the text, without the quote), and the import takes that
quote off again: a value that begins with quotes and then one of those characters loses one
quote, so every value imports back exactly as it was. The phone (E.164, always ``+`` and
digits) and the opt-out time are written as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal
from textbridge.contacts.repository import ContactFilter, ContactRepository
from textbridge.contacts.service import (
    FIELD_NAME,
    clean_changes,
    contacts,
    tag_changed,
)
from textbridge.errors import Conflict, ValidationFailed
from textbridge.events.service import record
from textbridge.kit.clock import as_utc, utcnow
from textbridge.kit.ids import new_id
from textbridge.models import Contact

OWN_COLUMNS = ("phone", "first_name", "last_name", "tag", "opted_out_at")
MAX_REPORTED_ERRORS = 1000

# A text value a spreadsheet would read as a formula, and the same after quotes: the export
# adds a quote to both, the import takes one off, so the one maps back onto the other.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # in the file, the header being line 1
    field: str | None
    message: str


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS

    def refuse(self, line: int, where: str | None, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, where, message))


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    values: dict[str, Any]  # clean column values
    opted_out_at: datetime | None


async def import_csv(
    session: AsyncSession,
    caller: Principal,
    data: bytes,
    *,
    group_id: str | None,
    max_rows: int,
) -> ImportReport:
    if group_id is not None:
        await contacts.group(session, caller, group_id)
    report = ImportReport()
    rows = _read(data, max_rows, report)
    repository = ContactRepository(session)
    existing = await repository.by_phones(caller.account_id, [row.values["phone"] for row in rows])
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events = []
    touched: list[str] = []
    for row in rows:
        contact = existing.get(row.values["phone"])
        if contact is None:
            # A plain row, not an ORM object: a tenth of the cost, 100,000 times.
            created = {
                "id": new_id(),
                "account_id": caller.account_id,
                "phone": row.values["phone"],
                "region": row.values["region"],
                "first_name": row.values.get("first_name"),
                "last_name": row.values.get("last_name"),
                "tag": row.values.get("tag"),
                "fields": row.values.get("fields", {}),
                "opted_out_at": row.opted_out_at,
                "created_at": now,
                "updated_at": now,
            }
            inserts.append(created)
            touched.append(created["id"])
        else:
            old_tag = contact.tag
            for name in ("first_name", "last_name", "tag"):
                if row.values.get(name) is not None:
                    setattr(contact, name, row.values[name])
            contact.fields = {**(contact.fields or {}), **row.values.get("fields", {})}
            if row.opted_out_at is not None:
                contact.opted_out_at = row.opted_out_at
            contact.updated_at = now
            updates.append(_columns(contact) | {"b_id": contact.id})
            if contact.tag != old_tag:
                events.append(tag_changed(contact, old_tag))
            touched.append(contact.id)
    # The loaded contacts were changed as plain values: written below, not by the unit of work.
    session.expunge_all()
    try:
        await repository.insert_many(inserts)
    except IntegrityError as exc:  # a phone of the file was added meanwhile, by another request
        raise Conflict("contacts were added while the file was read; import it again") from exc
    await repository.update_many(updates)
    await record(session, events)
    if group_id is not None:
        await repository.add_members(group_id, touched)
    report.created = len(inserts)
    report.updated = len(updates)
    return report


def _columns(contact: Contact) -> dict[str, Any]:
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "tag": contact.tag,
        "fields": contact.fields,
        "opted_out_at": contact.opted_out_at,
        "updated_at": contact.updated_at,
    }


def _read(data: bytes, max_rows: int, report: ImportReport) -> list[_Row]:
    """The good rows; bad ones go into ``report``. Raises for a file that is not a CSV of
    contacts at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationFailed(
            f"the CSV is not UTF-8: byte 0x{data[exc.start]:02x} on line {line} "
            "(save it as 'CSV UTF-8')",
            field="file",
        ) from exc
    if "\x00" in text:
        raise ValidationFailed("the CSV must not contain NUL characters", field="file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ValidationFailed(
                "the CSV is empty: its first line must name the columns, e.g. "
                "phone,first_name,last_name",
                field="header",
            )
        columns = _columns_of(header)
        rows: list[_Row] = []
        seen: dict[str, int] = {}
        while True:
            line = reader.line_num + 1  # where the record starts: a quoted value may span lines
            record_ = next(reader, None)
            if record_ is None:
                break
            if not any(cell.strip() for cell in record_):
                continue
            report.rows += 1
            if report.rows > max_rows:
                raise ValidationFailed(
                    f"the CSV has more than {max_rows} rows; split it", field="file"
                )
            row = _row(line, columns, record_, report)
            if row is None:
                continue
            phone = row.values["phone"]
            if phone in seen:
                report.refuse(line, "phone", f"{phone} is already on line {seen[phone]}")
                continue
            seen[phone] = line
            rows.append(row)
    except csv.Error as exc:
        raise ValidationFailed(f"the CSV is malformed on line {reader.line_num}: {exc}") from exc
    return rows


def _columns_of(header: Sequence[str]) -> list[str]:
    columns = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip()
        if name.lower() in OWN_COLUMNS:
            name = name.lower()
        if not name:
            raise ValidationFailed(f"column {index} of the header has no name", field="header")
        if name not in OWN_COLUMNS and not FIELD_NAME.match(name):
            raise ValidationFailed(
                f"column {index} is named {name[:70]!r}; a custom field's name is 1-64 letters, "
                "digits or _, starting with a letter or _",
                field="header",
            )
        if name in columns:
            raise ValidationFailed(f"the header names {name!r} twice", field="header")
        columns.append(name)
    if "phone" not in columns:
        raise ValidationFailed(
            "the CSV has no phone column; its header names: " + ", ".join(columns)[:300],
            field="header",
        )
    return columns


def _row(line: int, columns: list[str], cells: list[str], report: ImportReport) -> _Row | None:
    if len(cells) != len(columns):
        report.refuse(line, None, f"{len(cells)} values; the header names {len(columns)} columns")
        return None
    changes: dict[str, Any] = {"fields": {}}
    opted_out_at = None
    for name, cell in zip(columns, cells, strict=True):
        value = cell.strip()
        if name == "opted_out_at":
            if value:
                try:
                    opted_out_at = as_utc(datetime.fromisoformat(value))
                except (ValueError, OverflowError):
                    report.refuse(
                        line, name, f"opted_out_at {value[:40]!r} is not an ISO 8601 time"
                    )
                    return None
        elif name in OWN_COLUMNS:
            changes[name] = (_restored(value) if name != "phone" else value) or None
        elif value:
            changes["fields"][name] = _restored(value)
    try:
        values = clean_changes(changes)
    except ValidationFailed as error:
        report.refuse(line, error.field, error.message)
        return None
    return _Row(line, values, opted_out_at)


async def export_csv(session: AsyncSession, caller: Principal, *, group_id: str | None) -> str:
    """Every contact (of the group), oldest first, with one column per custom field in use."""
    where = ContactFilter(group_id=group_id)
    if group_id is not None:
        await contacts.group(session, caller, group_id)
    repository = ContactRepository(session)
    rows = await repository.search(caller.account_id, where, before=None, limit=10**9, offset=0)
    custom = sorted({name for contact in rows for name in contact.fields or {}})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*OWN_COLUMNS, *custom])
    for contact in reversed(rows):
        fields = contact.fields or {}
        writer.writerow(
            [
                contact.phone,
                _neutralised(contact.first_name or ""),
                _neutralised(contact.last_name or ""),
                _neutralised(contact.tag or ""),
                contact.opted_out_at.isoformat() if contact.opted_out_at else "",
                *(_neutralised(fields.get(name, "")) for name in custom),
            ]
        )
    return out.getvalue()


def _neutralised(text: str) -> str:
    """A text cell no spreadsheet runs as a formula."""
    return "'" + text if _FORMULA.match(text) else text


def _restored(cell: str) -> str:
    """What :func:`_neutralised` made into ``cell``."""
    return cell[1:] if _NEUTRALISED.match(cell) else cell
