"""The dialects' contact endpoints: TextBoost's contact groups and contacts (its verbs and
paths as documented), and TextLink's tag update under both spellings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import wait_for

JSON = {"Accept": "application/json"}


def data_of(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def error_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"status", "message"}, body
    assert body["status"] == "error", body
    message: str = body["message"]
    return message


@pytest.mark.parametrize("prefix", ["/textboost/api/v3", "/api/http"])
async def test_textboost_groups_and_contacts_as_documented(
    tenant: httpx.AsyncClient, prefix: str
) -> None:
    group = data_of(
        await tenant.post(f"{prefix}/contacts", json={"name": "Codeglen"}, headers=JSON)
    )
    uid = group["uid"]
    assert (group["name"], group["contacts"]) == ("Codeglen", 0)
    shown = data_of(await tenant.post(f"{prefix}/contacts/{uid}/show", headers=JSON))
    assert shown["name"] == "Codeglen"
    assert data_of(await tenant.post(f"{prefix}/contacts/{uid}/show/"))["uid"] == uid
    renamed = data_of(
        await tenant.patch(f"{prefix}/contacts/{uid}", json={"name": "Codeglen Update"})
    )
    assert renamed["name"] == "Codeglen Update"

    stored = data_of(
        await tenant.post(f"{prefix}/contacts/{uid}/store", json={"phone": "8801721970168"})
    )
    assert (stored["phone"], stored["group_id"], stored["status"]) == (
        "8801721970168",
        uid,
        "subscribe",
    )
    contact = stored["uid"]
    # Documented as a number: a JSON number works too.
    other = data_of(
        await tenant.post(
            f"{prefix}/contacts/{uid}/store",
            json={"phone": 14155550100, "first_name": "Ana", "last_name": "Silva"},
        )
    )
    assert other["first_name"] == "Ana"
    found = data_of(await tenant.post(f"{prefix}/contacts/{uid}/search/{contact}"))
    assert found == stored
    updated = data_of(
        await tenant.patch(
            f"{prefix}/contacts/{uid}/update/{contact}",
            json={"phone": "8801821475168", "first_name": "Rahim"},
        )
    )
    assert (updated["phone"], updated["first_name"]) == ("8801821475168", "Rahim")

    page = data_of(await tenant.post(f"{prefix}/contacts/{uid}/all"))
    assert (page["current_page"], page["last_page"], page["per_page"], page["total"]) == (
        1,
        1,
        25,
        2,
    )
    assert {c["uid"] for c in page["data"]} == {contact, other["uid"]}
    groups = data_of(await tenant.get(f"{prefix}/contacts"))
    assert [(g["uid"], g["contacts"]) for g in groups["data"]] == [(uid, 2)]
    assert data_of(await tenant.get("/textboost/api/v3/contacts/"))["total"] == 1

    deleted = data_of(await tenant.delete(f"{prefix}/contacts/{uid}/delete/{contact}"))
    assert deleted["uid"] == contact
    error_of(await tenant.post(f"{prefix}/contacts/{uid}/search/{contact}"), 404)
    assert data_of(await tenant.delete(f"{prefix}/contacts/{uid}")) is None
    error_of(await tenant.post(f"{prefix}/contacts/{uid}/show"), 404)
    # The group's contacts are the account's: deleting the group leaves them.
    assert (await tenant.get(f"/v1/contacts/{other['uid']}")).status_code == 200


async def test_textboost_storing_a_known_phone_adds_it_to_the_group(
    tenant: httpx.AsyncClient,
) -> None:
    first = data_of(await tenant.post("/api/v3/contacts", json={"name": "First"}))["uid"]
    second = data_of(await tenant.post("/api/v3/contacts", json={"name": "Second"}))["uid"]
    a = data_of(await tenant.post(f"/api/v3/contacts/{first}/store", json={"phone": "14155550100"}))
    b = data_of(
        await tenant.post(
            f"/api/v3/contacts/{second}/store", json={"phone": "+14155550100", "first_name": "Bo"}
        )
    )
    assert a["uid"] == b["uid"]
    assert b["first_name"] == "Bo"
    # Through a group it is not in, a contact is not found.
    third = data_of(await tenant.post("/api/v3/contacts", json={"name": "Third"}))["uid"]
    message = error_of(await tenant.post(f"/api/v3/contacts/{third}/search/{a['uid']}"), 404)
    assert a["uid"] in message


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/api/v3/contacts", {}, 400, "name"),
        ("post", "/api/v3/contacts", {"name": ""}, 400, "name is required"),
        ("post", "/api/v3/contacts/{group}/store", {"phone": "12"}, 400, "not a valid phone"),
        ("post", "/api/v3/contacts/{group}/store", {"first_name": "x"}, 400, "phone"),
        ("post", "/api/v3/contacts/nope/store", {"phone": "14155550100"}, 404, "no group"),
        ("post", "/api/v3/contacts/nope/show", None, 404, "no group nope"),
        ("patch", "/api/v3/contacts/{group}/update/nope", {"phone": "14155550100"}, 404, "nope"),
        ("post", "/api/v3/contacts/{group}/all?page=0", None, 400, "page"),
    ],
)
async def test_textboost_contact_errors_in_its_shape(
    tenant: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    words: str,
) -> None:
    group = data_of(await tenant.post("/api/v3/contacts", json={"name": "G"}))["uid"]
    answer = await tenant.request(method, path.format(group=group), json=body)
    assert words in error_of(answer, status)
    assert (await tenant.get("/v1/contacts")).json()["data"] == []


async def test_textboost_sends_to_a_contact_list_with_custom_values(
    tenant: httpx.AsyncClient,
) -> None:
    group = data_of(await tenant.post("/api/v3/contacts", json={"name": "List"}))["uid"]
    ana = data_of(
        await tenant.post(
            f"/api/v3/contacts/{group}/store", json={"phone": "14155550100", "first_name": "Ana"}
        )
    )
    await tenant.patch(f"/v1/contacts/{ana['uid']}", json={"fields": {"code": "X1"}})
    answer = await tenant.post(
        "/api/http/sms/send",
        json={
            "contact_list_id": group,
            "recipient": "14155550101",
            "sender_id": "Shop",
            "type": "plain",
            "message": "Hi {first_name|friend}, use {code|WELCOME}",
        },
    )
    sent = data_of(answer)
    assert [(m["to"], m["message"]) for m in sent] == [
        ("14155550101", "Hi friend, use WELCOME"),
        ("14155550100", "Hi Ana, use X1"),
    ]
    for message in sent:
        assert (await wait_for(tenant, message["uid"]))["status"] == "delivered"
    message = error_of(
        await tenant.post(
            "/api/http/sms/send",
            json={"contact_list_id": "nope", "sender_id": "Shop", "type": "plain", "message": "x"},
        ),
        404,
    )
    assert "no group nope" in message


async def test_textboost_groups_of_another_account_are_not_found(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    theirs = data_of(await client.post("/api/v3/contacts", json={"name": "Admin's"}))["uid"]
    contact = data_of(
        await client.post(f"/api/v3/contacts/{theirs}/store", json={"phone": "14155550100"})
    )["uid"]
    for method, path, body in [
        ("post", f"/api/v3/contacts/{theirs}/show", None),
        ("patch", f"/api/v3/contacts/{theirs}", {"name": "x"}),
        ("delete", f"/api/v3/contacts/{theirs}", None),
        ("post", f"/api/v3/contacts/{theirs}/store", {"phone": "14155550101"}),
        ("post", f"/api/v3/contacts/{theirs}/search/{contact}", None),
        ("patch", f"/api/v3/contacts/{theirs}/update/{contact}", {"phone": "14155550102"}),
        ("delete", f"/api/v3/contacts/{theirs}/delete/{contact}", None),
        ("post", f"/api/v3/contacts/{theirs}/all", None),
    ]:
        error_of(await tenant.request(method, path, json=body), 404)
    assert data_of(await tenant.get("/api/v3/contacts"))["total"] == 0
    assert data_of(await client.post(f"/api/v3/contacts/{theirs}/all"))["total"] == 1


@pytest.mark.parametrize("path", ["/textlink/api/update-contect-tag", "/api/update-contact-tag"])
async def test_textlink_tag_update_creates_or_retags_the_contact(
    tenant: httpx.AsyncClient, path: str
) -> None:
    answer = await tenant.post(path, json={"phone_number": "+381690156360", "tag": "Cold"})
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    [contact] = (await tenant.get("/v1/contacts")).json()["data"]
    assert (contact["phone"], contact["tag"]) == ("+381690156360", "Cold")
    await tenant.patch(f"/v1/contacts/{contact['id']}", json={"first_name": "Aleksandar"})
    answer = await tenant.post(path, json={"phone_number": "381690156360", "tag": "Warm"})
    assert answer.json() == {"ok": True}
    await tenant.post(path, json={"phone_number": "381690156360", "tag": "Warm"})  # no change
    events = (await tenant.get("/v1/events", params={"type": "contact.tag_changed"})).json()
    assert [
        (e["data"]["old_tag"], e["data"]["tag"], e["data"]["name"], e["data"]["phone"])
        for e in events["data"]
    ] == [
        ("Cold", "Warm", "Aleksandar", "+381690156360"),
        (None, "Cold", None, "+381690156360"),
    ]


async def test_textlink_tag_update_refusals(tenant: httpx.AsyncClient) -> None:
    answer = await tenant.post(
        "/textlink/api/update-contact-tag", json={"phone_number": "12", "tag": "x"}
    )
    assert answer.status_code == 200  # TextLink's way: a refusal of the number is a 200
    assert answer.json()["ok"] is False
    assert answer.json()["message"].startswith("phone_number")
    answer = await tenant.post(
        "/textlink/api/update-contact-tag", json={"phone_number": "+14155550100", "tag": "t" * 65}
    )
    assert (answer.status_code, answer.json()["ok"]) == (400, False)
    assert "tag" in answer.json()["message"]
    answer = await tenant.post("/textlink/api/update-contact-tag", json={"tag": "x"})
    assert (answer.status_code, answer.json()["ok"]) == (400, False)
    unauthorized = await tenant.post(
        "/textlink/api/update-contact-tag",
        json={"phone_number": "+14155550100"},
        headers={"Authorization": "Bearer nope"},
    )
    assert unauthorized.status_code == 401
    assert (await tenant.get("/v1/contacts")).json()["data"] == []
