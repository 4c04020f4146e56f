"""Bad input to the native API: every malformed request is a 4xx in the native error shape,
names the field at fault, and leaves no trace (balance, ledger and messages unchanged)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, BASE_URL, client_of, make_settings
from textbridge.db import Database

OK = {"to": "+14155550100", "text": "hello"}
UNKNOWN_ID = "01J0000000000000000000000Z"


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The ``error`` object of an answer, after checking its status and shape."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["code"]
    assert error["message"]
    return error


async def snapshot(client: httpx.AsyncClient) -> tuple[Any, ...]:
    """Everything a failed request must leave untouched, as the account sees it."""
    account = (await client.get("/v1/account")).json()
    ledger = (await client.get("/v1/account/ledger", params={"limit": 500})).json()
    listed = (await client.get("/v1/messages", params={"limit": 500})).json()
    return account["balance"], ledger["data"], [m["id"] for m in listed["data"]]


def anonymous(client: httpx.AsyncClient, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url=BASE_URL, headers=headers)


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def body(**fields: Any) -> dict[str, Any]:
    """Request arguments for a good body changed by ``fields``."""
    return {"json": {**OK, **fields}}


JSON_TYPE = {"content-type": "application/json"}
EARLIEST = "0001-01-01T00:00:00+14:00"  # no UTC form: before the first UTC moment

# (case, request arguments, field, words the message must contain)
BAD_SEND_BODIES: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("not JSON", {"content": b"{not json", "headers": JSON_TYPE}, None, "JSON"),
    ("not JSON, no content type", {"content": b"to=+14155550100&text=hi"}, None, "JSON"),
    ("empty body", {"content": b""}, None, "JSON object"),
    ("JSON nested too deep", {"content": b"[" * 100_000 + b"]" * 100_000}, None, ""),
    ("a JSON array", {"json": [OK]}, None, "JSON object"),
    ("a JSON string", {"json": "hello"}, None, "JSON object"),
    ("to missing", {"json": {"text": "hi"}}, "to", "at least one recipient"),
    ("text missing", {"json": {"to": "+14155550100"}}, "text", "required"),
    ("to not a string", body(to=14155550100), "to", ""),
    ("text not a string", body(text=7), "text", ""),
    ("empty text", body(text=""), "text", "empty"),
    ("text too long", body(text="x" * 1601), "text", "1600"),
    ("NUL in text", body(text="a\x00b"), "text", "NUL"),
    ("invalid number", body(to="+1415555"), "to", "+1415555"),
    ("letters as number", body(to="call me"), "to", "call me"),
    ("empty list", body(to=[]), "to", ""),
    ("a number in the list", body(to=["+14155550100", 5]), "to[1]", ""),
    ("unknown field", body(colour="red"), "colour", "colour"),
    ("bad type", body(type="fax"), "type", ""),
    ("sender of 12 characters", body(sender="Textbridge12"), "sender", ""),
    ("sender with symbols", body(sender="Hi!$"), "sender", ""),
    ("sender a bad number", body(sender="+999123"), "sender", "+999123"),
    ("schedule_at not a date", body(schedule_at="next friday"), "schedule_at", ""),
    ("schedule_at in the past", body(schedule_at=in_days(-1)), "schedule_at", "past"),
    ("schedule_at a year ahead", body(schedule_at=in_days(366)), "schedule_at", "365"),
    ("schedule_at off the UTC range", body(schedule_at=EARLIEST), "schedule_at", ""),
    ("ttl_seconds 0", body(ttl_seconds=0), "ttl_seconds", ""),
    ("ttl_seconds negative", body(ttl_seconds=-5), "ttl_seconds", ""),
    ("ttl_seconds over the maximum", body(ttl_seconds=8 * 24 * 3600), "ttl_seconds", ""),
    ("ttl_seconds not a number", body(ttl_seconds="soon"), "ttl_seconds", ""),
    ("custom_id too long", body(custom_id="c" * 256), "custom_id", "255"),
    ("NUL in custom_id", body(custom_id="a\x00b"), "custom_id", "NUL"),
]


@pytest.mark.parametrize(
    ("request_kwargs", "field", "words"),
    [case[1:] for case in BAD_SEND_BODIES],
    ids=[case[0] for case in BAD_SEND_BODIES],
)
async def test_a_bad_send_is_refused_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    request_kwargs: dict[str, Any],
    field: str | None,
    words: str,
) -> None:
    before = await snapshot(client)
    error = error_of(await client.post("/v1/messages", **request_kwargs), 400)
    assert error["field"] == field
    assert error["code"] == "validation_error"
    assert words in error["message"]
    assert await snapshot(client) == before


async def test_one_bad_number_in_a_list_refuses_the_whole_request(
    client: httpx.AsyncClient,
) -> None:
    before = await snapshot(client)
    numbers = ["+14155550100", "+381690156360", "+1 415 555", "+447911123456"]
    error = error_of(await client.post("/v1/messages", json={"to": numbers, "text": "x"}), 400)
    assert error["field"] == "to[2]"
    assert "+1 415 555" in error["message"]
    assert await snapshot(client) == before


async def test_more_than_a_thousand_recipients_is_refused(client: httpx.AsyncClient) -> None:
    before = await snapshot(client)
    numbers = [f"+1415555{1000 + i:04d}" for i in range(1001)]
    error = error_of(await client.post("/v1/messages", json={"to": numbers, "text": "x"}), 400)
    assert error["field"] == "to"
    assert "1000" in error["message"]
    assert await snapshot(client) == before


async def test_limits_are_inclusive(client: httpx.AsyncClient) -> None:
    """The longest text and the longest custom id are accepted."""
    body = {**OK, "text": "x" * 1600, "custom_id": "c" * 255, "sender": "Textbridge1"}
    answer = await client.post("/v1/messages", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["messages"][0]["segments"] == 11  # 1600 / 153


async def test_a_body_over_the_default_limit_is_413(client: httpx.AsyncClient) -> None:
    before = await snapshot(client)
    big = {**OK, "custom_id": "x" * (8 * 1024 * 1024 + 1)}
    error = error_of(await client.post("/v1/messages", json=big), 413)
    assert error["code"] == "payload_too_large"
    assert await snapshot(client) == before


@pytest.fixture
async def small_client(database_url: str, tmp_path: Path, db: Database) -> AsyncIterator[Any]:
    """An admin client of an app that takes bodies up to 1 KiB."""
    async with client_of(make_settings(database_url, tmp_path), max_body_bytes=1024) as http:
        yield http


async def test_the_body_limit_is_a_setting_and_413_has_the_error_shape(
    small_client: httpx.AsyncClient,
) -> None:
    before = await snapshot(small_client)
    body = {**OK, "text": "x" * 1200}
    error = error_of(await small_client.post("/v1/messages", json=body), 413)
    assert error["code"] == "payload_too_large"
    assert "1024" in error["message"]

    async def chunks() -> AsyncIterable[bytes]:
        # No Content-Length: the limit is enforced while the body streams in.
        yield b'{"to": "+14155550100", "text": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    streamed = await small_client.post(
        "/v1/messages", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert error_of(streamed, 413)["code"] == "payload_too_large"
    assert await snapshot(small_client) == before
    # A body under the limit still goes through.
    assert (await small_client.post("/v1/messages", json=OK)).status_code == 202


async def test_not_enough_balance_is_402_and_writes_nothing(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    answer = await client.put("/v1/prices/RS", json={"price_per_segment": 1000})
    assert answer.status_code == 200, answer.text
    before = await snapshot(tenant)
    assert before[0] == 100
    answer = await tenant.post("/v1/messages", json={"to": "+381690156360", "text": "hi"})
    error = error_of(answer, 402)
    assert error["code"] == "insufficient_balance"
    assert await snapshot(tenant) == before
    assert [entry["kind"] for entry in before[1]] == ["transfer_in"]
    # The whole batch must be covered: 99 cheap messages and one dear one are refused together.
    numbers = [f"+1415555{2000 + i:04d}" for i in range(99)] + ["+381690156360"]
    error_of(await tenant.post("/v1/messages", json={"to": numbers, "text": "hi"}), 402)
    assert await snapshot(tenant) == before


async def test_exactly_enough_balance_is_accepted(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    await client.put("/v1/prices/RS", json={"price_per_segment": 50})
    answer = await tenant.post("/v1/messages", json={"to": "+381690156360", "text": "x" * 161})
    assert answer.status_code == 202, answer.text
    assert (await tenant.get("/v1/account")).json()["balance"] == 0
    error_of(await tenant.post("/v1/messages", json={"to": "+381690156360", "text": "x"}), 402)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tb_not_a_key_that_exists_0000"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {ADMIN_KEY}"},
        {"Authorization": ADMIN_KEY},
    ],
    ids=["missing", "unknown key", "empty bearer", "basic scheme", "no scheme"],
)
async def test_requests_without_a_valid_key_are_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    before = await snapshot(client)
    async with anonymous(client, **headers) as stranger:
        for method, path, body in [
            ("POST", "/v1/messages", OK),
            ("GET", "/v1/messages", None),
            ("GET", "/v1/account", None),
            ("PUT", "/v1/prices/RS", {"price_per_segment": 1}),
        ]:
            answer = await stranger.request(method, path, json=body)
            assert error_of(answer, 401)["code"] == "unauthorized"
    assert await snapshot(client) == before


async def test_unknown_message_id_is_404(client: httpx.AsyncClient) -> None:
    for answer in [
        await client.get(f"/v1/messages/{UNKNOWN_ID}"),
        await client.post(f"/v1/messages/{UNKNOWN_ID}/cancel"),
        await client.get("/v1/messages/not-an-id"),
    ]:
        error = error_of(answer, 404)
        assert error["code"] == "not_found"
        assert error["field"] == "id"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "!!!not-a-cursor"}, "cursor"),
        ({"cursor": "abc"}, "cursor"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"status": "lost"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"phone": "12"}, "phone"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"batch_id": "a\x00b"}, "batch_id"),
    ],
)
async def test_bad_list_filters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    error = error_of(await client.get("/v1/messages", params=params), 400)
    assert error["field"] == field


async def test_time_range_edges_are_not_errors(client: httpx.AsyncClient) -> None:
    """Times before the epoch or with extreme offsets are valid filters, merely empty ones."""
    await client.post("/v1/messages", json=OK)
    for params in [
        {"since": "1960-01-01T00:00:00Z"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "2020-01-01T00:00:00", "until": "2999-01-01T00:00:00+02:00"},
    ]:
        answer = await client.get("/v1/messages", params=params)
        assert answer.status_code == 200, (params, answer.text)
        assert len(answer.json()["data"]) == 1
    answer = await client.get("/v1/messages", params={"until": "1960-01-01T00:00:00Z"})
    assert answer.json()["data"] == []


async def test_bad_ledger_cursor_is_400(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get("/v1/account/ledger", params={"cursor": "%%%"}), 400)
    assert error["field"] == "cursor"


async def test_nul_in_a_path_is_a_client_error(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/messages/a%00b"),
        ("POST", "/v1/messages/a%00b/cancel"),
        ("GET", "/v1/accounts/a%00b"),
        ("DELETE", "/v1/keys/a%00b"),
    ]:
        answer = await client.request(method, path)
        assert 400 <= answer.status_code < 500, (path, answer.text)
        error_of(answer, answer.status_code)


async def test_bad_idempotency_keys_are_400(client: httpx.AsyncClient) -> None:
    before = await snapshot(client)
    for key in ["", "k" * 256, "a\x00b", "tab\there"]:
        answer = await client.post("/v1/messages", json=OK, headers={"Idempotency-Key": key})
        assert error_of(answer, 400)["field"] == "Idempotency-Key"
    assert await snapshot(client) == before


async def test_unknown_route_and_wrong_method_answer_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    assert error_of(await client.get("/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(await client.get("/nothing-here"), 404)["code"] == "not_found"
    assert error_of(await client.delete("/v1/messages"), 405)["code"] == "method_not_allowed"
    answer = await client.put(f"/v1/messages/{UNKNOWN_ID}", json=OK)
    assert error_of(answer, 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/accounts", {"name": ""}, "name"),
        ("POST", "/v1/accounts", {"name": "bad/name"}, "name"),
        ("POST", "/v1/accounts", {"name": "ok", "balance": -1}, "balance"),
        ("POST", "/v1/accounts", {"name": "ok", "balance": "1.0000001"}, "balance"),
        ("POST", "/v1/accounts", {"name": "ok", "balance": "NaN"}, "balance"),
        ("POST", "/v1/accounts", {"name": "ok", "parent": "x"}, "parent"),
        ("POST", "/v1/keys", {"name": "k" * 101}, "name"),
        ("PUT", "/v1/prices/RS", {"price_per_segment": -0.01}, "price_per_segment"),
        ("PUT", "/v1/prices/RS", {"price_per_segment": "Infinity"}, "price_per_segment"),
        ("PUT", "/v1/prices/RS", {}, "price_per_segment"),
        ("PUT", "/v1/prices/rs", {"price_per_segment": 1}, "country"),
        ("PUT", "/v1/prices/XX", {"price_per_segment": 1}, "country"),
        ("POST", "/v1/simulator/inbound", {"text": "hi"}, "from"),
        ("POST", "/v1/simulator/inbound", {"from": "12", "text": "hi"}, "from"),
        ("POST", "/v1/simulator/inbound", {"from": "+14155550100", "to": "x", "text": "hi"}, "to"),
        ("POST", "/v1/simulator/inbound", {"from": "+14155550100", "text": "a\x00"}, "text"),
    ],
)
async def test_other_endpoints_name_the_bad_field_and_write_nothing(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = await snapshot(client)
    prices = (await client.get("/v1/prices")).json()
    error = error_of(await client.request(method, path, json=body), 400)
    assert error["field"] == field
    assert await snapshot(client) == before
    assert (await client.get("/v1/prices")).json() == prices
    assert (await client.get("/v1/accounts")).json() == []
