"""Bad input in every dialect: the dialect's own error shape, a 4xx, nothing written, never a
500; and numbers in the formats people actually type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

SEND = {
    "textlink": ("/textlink/api/send-sms", lambda to: {"phone_number": to, "text": "x"}),
    "textflow": ("/textflow/api/send-sms", lambda to: {"phone_number": to, "text": "x"}),
    "textboost": (
        "/textboost/api/http/sms/send",
        lambda to: {"recipient": to, "sender_id": "Shop", "type": "plain", "message": "x"},
    ),
}


def is_error_shape(dialect: str, body: dict[str, Any]) -> bool:
    if dialect == "textboost":
        return body.get("status") == "error" and isinstance(body.get("message"), str)
    return body.get("ok") is False and isinstance(body.get("message"), str)


@pytest.mark.parametrize("dialect", list(SEND))
@pytest.mark.parametrize(
    "raw",
    [
        "b'not json",
        "[]",
        '"a string"',
        "null",
        "{}",
        '{"phone_number": {"nested": 1}, "recipient": {"nested": 1}, "text": [], "message": []}',
        '{"phone_number": 1e400, "recipient": true, "text": null}',
    ],
)
async def test_malformed_bodies(client: httpx.AsyncClient, dialect: str, raw: str) -> None:
    path, _ = SEND[dialect]
    answer = await client.post(
        path, content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert is_error_shape(dialect, answer.json()), answer.text
    assert (await client.get("/v1/messages")).json()["data"] == []


@pytest.mark.parametrize("dialect", list(SEND))
async def test_ten_megabyte_bodies(client: httpx.AsyncClient, dialect: str) -> None:
    path, body = SEND[dialect]
    huge = body("+14155550100")
    huge["text" if dialect != "textboost" else "message"] = "x" * (10 * 1024 * 1024)
    answer = await client.post(path, json=huge)
    assert answer.status_code == 413
    assert is_error_shape(dialect, answer.json())


@pytest.mark.parametrize("dialect", list(SEND))
@pytest.mark.parametrize(
    "number",
    ["+1 (415) 555-0100", "+1-415-555-0100", "0014155550100", "14155550100", " +14155550100 "],
)
async def test_numbers_in_odd_formats(client: httpx.AsyncClient, dialect: str, number: str) -> None:
    path, body = SEND[dialect]
    answer = await client.post(path, json=body(number))
    assert answer.status_code == 200, answer.text
    [message] = (await client.get("/v1/messages")).json()["data"]
    assert message["to"] == "+14155550100"


@pytest.mark.parametrize("dialect", list(SEND))
@pytest.mark.parametrize("number", ["+1 415", "0", "+", "++14155550100", "+1415555010O", "☎"])
async def test_numbers_that_are_not(client: httpx.AsyncClient, dialect: str, number: str) -> None:
    path, body = SEND[dialect]
    answer = await client.post(path, json=body(number))
    assert 400 <= answer.status_code < 500 or (dialect == "textlink" and answer.status_code == 200)
    assert is_error_shape(dialect, answer.json()), answer.text
    assert (await client.get("/v1/messages")).json()["data"] == []
