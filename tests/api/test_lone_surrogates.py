"""A lone UTF-16 surrogate in a JSON body ("\\ud800", half of a pair) is not text any database
can store: every route refuses it with a 400 in the caller's error shape, naming the field,
and writes nothing. A whole pair (an emoji escaped as JSON escapes it) is ordinary text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.devices.test_registration import register

LONE = b'"hi \\ud800"'
RAW = b'"hi \xed\xa0\x80"'  # the UTF-8 bytes of a surrogate, which Python's JSON reader accepts
PAIR = b'"hi \\ud83d\\ude00"'
NUMBER = b'"+14155550100"'


def body(**fields: bytes) -> bytes:
    return b"{" + b",".join(b'"%s":%s' % (name.encode(), v) for name, v in fields.items()) + b"}"


def native(answer: dict[str, Any], field: str) -> bool:
    return answer["error"]["field"] == field and answer["error"]["code"] == "validation_error"


def textlink(answer: dict[str, Any], field: str) -> bool:
    return answer["ok"] is False and answer["message"].startswith(field)


def textflow(answer: dict[str, Any], field: str) -> bool:
    return textlink(answer, field) and answer["status"] == 400


def textboost(answer: dict[str, Any], field: str) -> bool:
    return answer["status"] == "error" and answer["message"].startswith(field)


SEND_TEXTLINK = {"phone_number": NUMBER}
SEND_TEXTBOOST = {"recipient": NUMBER, "sender_id": b'"Shop"', "type": b'"plain"'}

# (route, the body's other fields, the field holding the string, the shape, success status)
ROUTES = [
    ("/v1/messages", {"to": NUMBER}, "text", native, 202),
    ("/v1/contacts", {"phone": NUMBER}, "tag", native, 201),
    ("/textlink/api/send-sms", SEND_TEXTLINK, "text", textlink, 200),
    ("/api/send-sms", SEND_TEXTLINK, "text", textlink, 200),
    ("/textlink/api/update-contact-tag", SEND_TEXTLINK, "tag", textlink, 200),
    ("/api/update-contact-tag", SEND_TEXTLINK, "tag", textlink, 200),
    ("/textflow/api/send-sms", SEND_TEXTLINK, "text", textflow, 200),
    ("/textflow/api/bulk-sms", {"phone_numbers": b"[" + NUMBER + b"]"}, "text", textflow, 200),
    ("/textboost/api/http/sms/send", SEND_TEXTBOOST, "message", textboost, 200),
    ("/api/http/sms/send", SEND_TEXTBOOST, "message", textboost, 200),
]


@pytest.mark.parametrize(
    ("path", "fields", "field", "shape", "ok"), ROUTES, ids=[route[0] for route in ROUTES]
)
async def test_a_lone_surrogate_is_a_400_naming_the_field(
    client: httpx.AsyncClient,
    path: str,
    fields: dict[str, bytes],
    field: str,
    shape: Any,
    ok: int,
) -> None:
    for value in (LONE, RAW):
        answer = await client.post(path, content=body(**fields, **{field: value}))
        assert answer.status_code == 400, answer.text
        assert shape(answer.json(), field), answer.text
        assert "surrogate" in answer.text
    assert (await client.get("/v1/messages")).json()["data"] == []
    assert (await client.get("/v1/contacts")).json()["data"] == []
    answer = await client.post(path, content=body(**fields, **{field: PAIR}))
    assert answer.status_code == ok, answer.text


async def test_the_field_is_named_wherever_it_is(client: httpx.AsyncClient) -> None:
    contact = body(phone=NUMBER, fields=b'{"city": "Porto", "note": ' + LONE + b"}")
    error = (await client.post("/v1/contacts", content=contact)).json()["error"]
    assert error["field"] == "fields.note"
    send = body(to=b'["+14155550101", ' + LONE + b"]", text=b'"x"')
    assert (await client.post("/v1/messages", content=send)).json()["error"]["field"] == "to[1]"
    key = body(to=NUMBER, text=b'"x"', **{"\\udfff": b"1"})  # in a name: the body's
    answer = await client.post("/v1/messages", content=key)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] is None


async def test_a_nul_anywhere_in_a_body_is_a_400_naming_it(tenant: httpx.AsyncClient) -> None:
    """Found by the schema fuzzer on PostgreSQL, which cannot store a NUL in text: a phone's
    name with one was a 500."""
    pairing = (await tenant.post("/v1/devices/pairing")).json()
    device_id = (await register(tenant, f"Bearer {pairing['token']}")).json()["id"]
    answer = await tenant.patch(f"/v1/devices/{device_id}", json={"name": "a\x00b"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == "name"
