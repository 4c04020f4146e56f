"""CSV import keeps good rows and reports bad ones by line; a file that is not a CSV of
contacts is refused whole; export writes what import reads."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

CSV = {"content-type": "text/csv"}


async def import_csv(
    client: httpx.AsyncClient, body: bytes | str, status: int = 200, **params: Any
) -> dict[str, Any]:
    data = body.encode() if isinstance(body, str) else body
    answer = await client.post("/v1/contacts/import", content=data, headers=CSV, params=params)
    assert answer.status_code == status, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def assert_imports_back(
    tenant: httpx.AsyncClient, exported: bytes, keys: tuple[str, ...]
) -> None:
    """Every contact deleted, then ``exported`` imported: each comes back as it was in
    ``keys``."""
    before = {c["phone"]: c for c in await all_contacts(tenant)}
    for contact in before.values():
        await tenant.delete(f"/v1/contacts/{contact['id']}")
    report = await import_csv(tenant, exported)
    assert (report["created"], report["failed"]) == (len(before), 0)
    after = {c["phone"]: c for c in await all_contacts(tenant)}
    for phone, contact in before.items():
        assert {k: after[phone][k] for k in keys} == {k: contact[k] for k in keys}


async def all_contacts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/v1/contacts", params={"limit": 500})
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_good_rows_are_kept_and_bad_rows_reported_by_line(tenant: httpx.AsyncClient) -> None:
    existing = (
        await tenant.post(
            "/v1/contacts",
            json={
                "phone": "+14155550100",
                "first_name": "Old",
                "tag": "cold",
                "fields": {"a": "1"},
            },
        )
    ).json()
    team = (await tenant.post("/v1/groups", json={"name": "Imported"})).json()["id"]
    body = "\n".join(
        [
            "\ufeffPhone,First_Name,last_name,tag,city",
            "+14155550100,,Smith,warm,Porto",  # updates: empty cells keep what was there
            '+14155550101,"Zoë, Jr.",Ng,,"Lis\nboa"',  # quoted comma and newline
            "12,Bad,Number,,",  # line 5: invalid phone
            "",  # blank lines are skipped
            "+1 415 555 0101,Dup,,,",  # line 7: the same phone as line 3
            "+14155550102,Too,Many,,,extra",  # line 8: six values
            f"+14155550103,{'x' * 101},,,",  # line 9: name too long
            "+14155550104,Ok,,,",
        ]
    )
    report = await import_csv(tenant, body, group_id=team)
    assert report["rows"] == 7
    assert (report["created"], report["updated"], report["failed"]) == (2, 1, 4)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (5, "phone"),
        (7, "phone"),
        (8, None),
        (9, "first_name"),
    ]
    assert "already on line 3" in report["errors"][1]["message"]

    contacts = {c["phone"]: c for c in await all_contacts(tenant)}
    assert set(contacts) == {"+14155550100", "+14155550101", "+14155550104"}
    updated = contacts["+14155550100"]
    assert updated["id"] == existing["id"]
    assert (updated["first_name"], updated["last_name"], updated["tag"]) == ("Old", "Smith", "warm")
    assert updated["fields"] == {"a": "1", "city": "Porto"}
    assert contacts["+14155550101"]["first_name"] == "Zoë, Jr."
    assert contacts["+14155550101"]["fields"] == {"city": "Lis\nboa"}
    assert all(c["groups"] == [team] for c in contacts.values())
    tags = (await tenant.get("/v1/events", params={"subject_id": existing["id"]})).json()["data"]
    assert next((e["data"]["old_tag"], e["data"]["tag"]) for e in tags) == ("cold", "warm")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("phone,name\n+14155550100,Ana\n".encode("utf-16"), "file", "not UTF-8"),
        ("phone,first_name\n+14155550100,Jos\xe9\n".encode("latin-1"), "file", "line 2"),
        (b"", "header", "empty"),
        (b"first_name,last_name\nAna,Silva\n", "header", "no phone column"),
        (b"phone,,tag\n+14155550100,,x\n", "header", "column 2"),
        (b"phone,tag,Tag\n+14155550100,x,y\n", "header", "twice"),
        (b"phone,my city\n+14155550100,x\n", "header", "my city"),
        (b"phone,note\n+14155550100,a\x00b\n", "file", "NUL"),
    ],
)
async def test_a_file_that_is_not_a_csv_of_contacts_is_refused_whole(
    tenant: httpx.AsyncClient, body: bytes, field: str, words: str
) -> None:
    error = (await import_csv(tenant, body, status=400))["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert await all_contacts(tenant) == []


async def test_import_limits_and_unknown_group(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    other = (await client.post("/v1/groups", json={"name": "Admin's"})).json()["id"]
    answer = await tenant.post(
        "/v1/contacts/import", content=b"phone\n+14155550100\n", params={"group_id": other}
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["field"] == "group_id"
    assert await all_contacts(tenant) == []


async def test_export_imports_back_unchanged(tenant: httpx.AsyncClient) -> None:
    await tenant.post(
        "/v1/contacts",
        json={
            "phone": "+14155550100",
            "first_name": "Ana",
            "tag": "vip",
            "fields": {"city": "Porto"},
        },
    )
    await tenant.post(
        "/v1/contacts",
        json={"phone": "+447911123456", "last_name": 'Quote "Q"', "fields": {"plan": "x,y"}},
    )
    await tenant.patch(
        f"/v1/contacts/{(await all_contacts(tenant))[0]['id']}", json={"opted_out": True}
    )
    answer = await tenant.get("/v1/contacts/export")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "phone", "first_name", "last_name", "tag", "opted_out_at", "city", "plan"
    ]  # fmt: skip
    assert [r["phone"] for r in rows] == ["+14155550100", "+447911123456"]  # oldest first
    await assert_imports_back(
        tenant,
        answer.content,
        ("first_name", "last_name", "tag", "fields", "opted_out", "opted_out_at"),
    )


async def test_export_writes_no_formula_and_imports_back_unchanged(
    tenant: httpx.AsyncClient,
) -> None:
    """A text cell a spreadsheet would run is written after a quote; the import takes it off."""
    fields = {"a": '=HYPERLINK("http://evil.example","x")', "b": "+1 555 0100", "c": "'=2"}
    created = await tenant.post(
        "/v1/contacts",
        json={
            "phone": "+14155550100",
            "first_name": "@SUM(A1)",
            "last_name": "-2+3",
            "tag": "'quoted",  # a quote, then no formula: left as it is
            "fields": fields,
        },
    )
    assert created.status_code == 201, created.text
    await tenant.post("/v1/contacts", json={"phone": "+447911123456", "last_name": "O'Brien"})
    answer = await tenant.get("/v1/contacts/export")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[1] == [
        "+14155550100", "'@SUM(A1)", "'-2+3", "'quoted", "",
        "'" + fields["a"], "'+1 555 0100", "''=2",
    ]  # fmt: skip
    assert rows[2][:3] == ["+447911123456", "", "O'Brien"]
    await assert_imports_back(tenant, answer.content, ("first_name", "last_name", "tag", "fields"))


async def test_a_hundred_thousand_contacts_import_in_one_request(
    tenant: httpx.AsyncClient,
) -> None:
    lines = ["phone,first_name,city"]
    for index in range(100_000):
        # Every 10,000th row is broken: its number is too short.
        phone = "12" if index % 10_000 == 7 else f"+1415{5000000 + index:07d}"
        lines.append(f"{phone},Name{index},City{index % 13}")
    report = await import_csv(tenant, "\n".join(lines))
    assert (report["rows"], report["created"], report["failed"]) == (100_000, 99_990, 10)
    assert [error["line"] for error in report["errors"]] == [
        index + 2 for index in range(7, 100_000, 10_000)
    ]
    page = (await tenant.get("/v1/contacts", params={"search": "Name99999"})).json()["data"]
    assert [(c["phone"], c["fields"]) for c in page] == [("+14155099999", {"city": "City3"})]
