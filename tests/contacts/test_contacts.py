"""Contacts and groups through the native API: create, read, update, delete, list with search
and cursors; tag changes recorded as events; bad input refused naming the field, writing
nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/v1/contacts", json=body)
    assert answer.status_code == 201, answer.text
    contact: dict[str, Any] = answer.json()
    return contact


async def group(client: httpx.AsyncClient, name: str) -> str:
    answer = await client.post("/v1/groups", json={"name": name})
    assert answer.status_code == 201, answer.text
    group_id: str = answer.json()["id"]
    return group_id


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


async def test_a_contact_is_created_read_updated_and_deleted(tenant: httpx.AsyncClient) -> None:
    friends = await group(tenant, "Friends")
    contact = await create(
        tenant,
        phone="+351 912 345 678",
        first_name=" Ana ",
        last_name="Silva",
        tag="warm",
        fields={"city": "Lisboa", "plan": "gold"},
        groups=[friends],
    )
    assert contact["phone"] == "+351912345678"  # E.164
    assert contact["first_name"] == "Ana"
    assert contact["groups"] == [friends]
    assert contact["opted_out"] is False
    assert (await tenant.get(f"/v1/contacts/{contact['id']}")).json() == contact

    answer = await tenant.patch(
        f"/v1/contacts/{contact['id']}",
        json={"last_name": None, "fields": {"plan": None, "code": "ü-42"}, "groups": []},
    )
    assert answer.status_code == 200, answer.text
    updated = answer.json()
    assert updated["first_name"] == "Ana"  # not sent, not changed
    assert updated["last_name"] is None
    assert updated["fields"] == {"city": "Lisboa", "code": "ü-42"}  # merged; null removes
    assert updated["groups"] == []

    assert (await tenant.delete(f"/v1/contacts/{contact['id']}")).status_code == 204
    error_of(await tenant.get(f"/v1/contacts/{contact['id']}"), 404)
    # The group stays, empty.
    assert (await tenant.get(f"/v1/groups/{friends}")).json()["contacts"] == 0


async def test_one_contact_per_phone(tenant: httpx.AsyncClient) -> None:
    first = await create(tenant, phone="+14155550100")
    error = error_of(await tenant.post("/v1/contacts", json={"phone": "14155550100"}), 409)
    assert error["field"] == "phone"
    assert first["id"] in error["message"]
    other = await create(tenant, phone="+14155550101")
    error = error_of(
        await tenant.patch(f"/v1/contacts/{other['id']}", json={"phone": "+1 415 555 0100"}), 409
    )
    assert error["field"] == "phone"
    listed = (await tenant.get("/v1/contacts")).json()["data"]
    assert sorted(c["phone"] for c in listed) == ["+14155550100", "+14155550101"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"phone": ""}, "phone", "required"),
        ({"phone": "+14155550100", "first_name": "x" * 101}, "first_name", "at most 100"),
        ({"phone": "+14155550100", "tag": "t" * 65}, "tag", "at most 64"),
        ({"phone": "+14155550100", "fields": {"city": "x" * 1001}}, "fields.city", "at most 1000"),
        ({"phone": "+14155550100", "fields": {"bad key": "x"}}, "fields", "letters, digits"),
        ({"phone": "+14155550100", "fields": {"first_name": "x"}}, "fields.first_name", "own"),
        (
            {"phone": "+14155550100", "fields": {f"f{i}": "x" for i in range(51)}},
            "fields",
            "at most 50",
        ),
        ({"phone": "+14155550100", "first_name": "a\x00b"}, "first_name", "NUL"),
        (
            {"phone": "+14155550100", "groups": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]},
            "groups[0]",
            "no group",
        ),
        ({"phone": "+14155550100", "colour": "red"}, "colour", "not a known field"),
    ],
)
async def test_bad_contacts_are_refused_naming_the_field(
    tenant: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    answer = await tenant.post("/v1/contacts", json=body)
    assert 400 <= answer.status_code < 500, answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert (await tenant.get("/v1/contacts")).json()["data"] == []  # nothing half-written


async def test_search_filters_and_cursor_pages(tenant: httpx.AsyncClient) -> None:
    vip = await group(tenant, "VIP")
    made = []
    for index in range(7):
        made.append(
            await create(
                tenant,
                phone=f"+1415555{index:04d}",
                first_name="Zoë" if index == 3 else f"Person{index}",
                last_name="O'Hara_%" if index == 4 else None,
                tag="hot" if index % 2 else "cold",
                groups=[vip] if index < 2 else [],
            )
        )

    async def ids(**params: Any) -> list[str]:
        answer = await tenant.get("/v1/contacts", params=params)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["data"]]

    newest_first = [c["id"] for c in reversed(made)]
    assert await ids() == newest_first
    assert await ids(search="zoË") == [made[3]["id"]]  # case-insensitive, unicode
    assert await ids(search="_%") == [made[4]["id"]]  # LIKE wildcards are literal
    assert await ids(search="555 0005") == [made[5]["id"]]  # digits of the phone
    assert await ids(search="person1") == [made[1]["id"]]
    assert await ids(tag="hot") == [made[5]["id"], made[3]["id"], made[1]["id"]]
    assert await ids(group_id=vip) == [made[1]["id"], made[0]["id"]]
    members = (await tenant.get(f"/v1/groups/{vip}/contacts")).json()["data"]
    assert [c["id"] for c in members] == [made[1]["id"], made[0]["id"]]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.get("/v1/contacts", params=params)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first


async def test_groups_are_named_counted_renamed_and_filled(tenant: httpx.AsyncClient) -> None:
    team = await group(tenant, "Team")
    a = await create(tenant, phone="+14155550100")
    b = await create(tenant, phone="+14155550101")
    answer = await tenant.post(
        f"/v1/groups/{team}/contacts", json={"contact_ids": [a["id"], b["id"], a["id"]]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["contacts"] == 2
    again = await tenant.post(f"/v1/groups/{team}/contacts", json={"contact_ids": [a["id"]]})
    assert again.json()["contacts"] == 2  # already in it: stays once
    renamed = await tenant.patch(f"/v1/groups/{team}", json={"name": "Core team"})
    assert renamed.json()["name"] == "Core team"
    listed = (await tenant.get("/v1/groups", params={"search": "core"})).json()["data"]
    assert [(g["id"], g["contacts"]) for g in listed] == [(team, 2)]

    assert (await tenant.delete(f"/v1/groups/{team}/contacts/{a['id']}")).status_code == 204
    error_of(await tenant.delete(f"/v1/groups/{team}/contacts/{a['id']}"), 404)
    assert (await tenant.get(f"/v1/contacts/{a['id']}")).json()["groups"] == []
    assert (await tenant.delete(f"/v1/groups/{team}")).status_code == 204
    assert (await tenant.get(f"/v1/contacts/{b['id']}")).status_code == 200  # contacts stay

    error = error_of(await tenant.post("/v1/groups", json={"name": "  "}), 400)
    assert error["field"] == "name"
    error = error_of(
        await tenant.post(f"/v1/groups/{team}/contacts", json={"contact_ids": [a["id"]]}), 404
    )
    assert error["field"] == "group_id"


async def test_adding_an_unknown_contact_to_a_group_adds_none(tenant: httpx.AsyncClient) -> None:
    team = await group(tenant, "Team")
    a = await create(tenant, phone="+14155550100")
    error = error_of(
        await tenant.post(f"/v1/groups/{team}/contacts", json={"contact_ids": [a["id"], "nope"]}),
        404,
    )
    assert error["field"] == "contact_ids[1]"
    assert (await tenant.get(f"/v1/groups/{team}")).json()["contacts"] == 0


async def test_tag_changes_are_events_with_the_old_and_new_tag(tenant: httpx.AsyncClient) -> None:
    contact = await create(tenant, phone="+14155550100", first_name="Ana", tag="cold")
    await tenant.patch(f"/v1/contacts/{contact['id']}", json={"tag": "warm"})
    await tenant.patch(f"/v1/contacts/{contact['id']}", json={"tag": "warm"})  # no change
    await tenant.patch(f"/v1/contacts/{contact['id']}", json={"first_name": "Ana B"})
    answer = await tenant.get(
        "/v1/events", params={"type": "contact.tag_changed", "subject_id": contact["id"]}
    )
    assert answer.status_code == 200, answer.text
    changes = [(e["data"]["old_tag"], e["data"]["tag"]) for e in answer.json()["data"]]
    assert changes == [("cold", "warm"), (None, "cold")]
    assert answer.json()["data"][0]["data"]["name"] == "Ana"


async def test_another_accounts_contacts_and_groups_are_404_everywhere(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    theirs = await create(client, phone="+14155550100", tag="admin's")
    their_group = await group(client, "Admin's")
    mine = await create(tenant, phone="+14155550100")  # the same phone: another account's
    my_group = await group(tenant, "Mine")

    attempts = [
        tenant.get(f"/v1/contacts/{theirs['id']}"),
        tenant.patch(f"/v1/contacts/{theirs['id']}", json={"tag": "x"}),
        tenant.delete(f"/v1/contacts/{theirs['id']}"),
        tenant.get(f"/v1/groups/{their_group}"),
        tenant.patch(f"/v1/groups/{their_group}", json={"name": "x"}),
        tenant.delete(f"/v1/groups/{their_group}"),
        tenant.get(f"/v1/groups/{their_group}/contacts"),
        tenant.post(f"/v1/groups/{their_group}/contacts", json={"contact_ids": [mine["id"]]}),
        tenant.post(f"/v1/groups/{my_group}/contacts", json={"contact_ids": [theirs["id"]]}),
        tenant.delete(f"/v1/groups/{their_group}/contacts/{theirs['id']}"),
        tenant.get("/v1/contacts", params={"group_id": their_group}),
        tenant.get("/v1/contacts/export", params={"group_id": their_group}),
        tenant.post("/v1/contacts", json={"phone": "+14155550199", "groups": [their_group]}),
        tenant.patch(f"/v1/contacts/{mine['id']}", json={"groups": [their_group]}),
        tenant.post("/v1/messages", json={"contacts": [theirs["id"]], "text": "hi"}),
        tenant.post("/v1/messages", json={"groups": [their_group], "text": "hi"}),
        tenant.post("/v1/bulk-jobs", json={"groups": [their_group], "text": "hi"}),
    ]
    for attempt in attempts:
        answer = await attempt
        assert answer.status_code == 404, answer.text
    listed = (await tenant.get("/v1/contacts")).json()["data"]
    assert [c["id"] for c in listed] == [mine["id"]]
    assert [g["id"] for g in (await tenant.get("/v1/groups")).json()["data"]] == [my_group]
    assert (await client.get(f"/v1/contacts/{theirs['id']}")).json()["tag"] == "admin's"
    assert (await client.get(f"/v1/groups/{their_group}")).json()["name"] == "Admin's"
    events = (await tenant.get("/v1/events")).json()["data"]
    assert events == []


async def test_concurrent_creates_of_one_phone_make_one_contact(tenant: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(tenant.post("/v1/contacts", json={"phone": "+14155550100"}) for _ in range(6))
    )
    assert sorted(answer.status_code for answer in answers) == [201] + [409] * 5
    assert len((await tenant.get("/v1/contacts")).json()["data"]) == 1


async def test_ids_that_cannot_exist_are_not_found_on_both_databases(
    tenant: httpx.AsyncClient,
) -> None:
    # Found by the schema fuzzer: a NUL in an id in a body reached PostgreSQL (a 500). A NUL
    # anywhere in a body is now refused before it is read (400, naming where); an id that
    # merely cannot exist is not found.
    team = await group(tenant, "Team")
    bad = "01\x00ab"
    for method, path, body, status in [
        ("post", "/v1/messages", {"contacts": [bad], "text": "hi"}, 400),
        ("post", "/v1/messages", {"groups": [bad], "text": "hi"}, 400),
        ("post", "/v1/bulk-jobs", {"groups": ["é"], "text": "hi"}, 404),
        ("post", "/v1/messages", {"groups": ["é"], "text": "hi"}, 404),
        ("post", "/v1/contacts", {"phone": "+14155550100", "groups": [bad]}, 400),
        ("post", f"/v1/groups/{team}/contacts", {"contact_ids": [bad]}, 400),
        (
            "post",
            "/api/http/sms/send",
            {"contact_list_id": bad, "sender_id": "Shop", "type": "plain", "message": "x"},
            400,
        ),
    ]:
        answer = await tenant.request(method, path, json=body)
        assert answer.status_code == status, answer.text
        if status == 400:
            assert "NUL" in answer.text, answer.text
    assert (await tenant.get("/v1/contacts")).json()["data"] == []
