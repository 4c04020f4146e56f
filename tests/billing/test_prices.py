"""The price table: read by anyone, changed by the admin, used for the next send."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GERMAN_MOBILE = "+4915123456789"


def prices_of(answer: httpx.Response) -> dict[str, float]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["currency"] == "USD"
    return {p["country"]: p["price_per_segment"] for p in body["prices"]}


async def price_of_send(client: httpx.AsyncClient, to: str, text: str = "x") -> float:
    answer = await client.post("/v1/messages", json={"to": to, "text": text})
    assert answer.status_code == 202, answer.text
    price: float = answer.json()["messages"][0]["price"]
    return price


async def test_the_default_table(client: httpx.AsyncClient, tenant: httpx.AsyncClient) -> None:
    prices = prices_of(await client.get("/v1/prices"))
    assert prices["*"] == 0.05
    assert prices["US"] == 0.0079
    assert prices["RS"] == 0.15
    assert prices["DE"] == 0.08
    answer = await client.get("/v1/prices")
    assert [p["country"] for p in answer.json()["prices"]] == sorted(prices)
    assert prices_of(await tenant.get("/v1/prices")) == prices  # any key may read it


async def test_a_new_price_applies_to_the_next_send(client: httpx.AsyncClient) -> None:
    assert await price_of_send(client, GERMAN_MOBILE) == 0.08
    answer = await client.put("/v1/prices/DE", json={"price_per_segment": "0.123456"})
    assert prices_of(answer)["DE"] == 0.123456
    assert prices_of(await client.get("/v1/prices"))["DE"] == 0.123456
    assert await price_of_send(client, GERMAN_MOBILE) == 0.123456
    assert await price_of_send(client, GERMAN_MOBILE, "x" * 161) == 0.246912  # 2 segments


async def test_a_country_without_a_price_gets_one(client: httpx.AsyncClient) -> None:
    japan = "+819012345678"
    assert await price_of_send(client, japan) == 0.05  # the default
    prices_of(await client.put("/v1/prices/JP", json={"price_per_segment": 0.07}))
    assert await price_of_send(client, japan) == 0.07
    answer = await client.put("/v1/prices/*", json={"price_per_segment": 0.06})
    assert prices_of(answer)["*"] == 0.06
    assert await price_of_send(client, japan) == 0.07
    assert await price_of_send(client, "+5511912345678") == 0.02  # Brazil keeps its own


async def test_deleting_a_price_falls_back_to_the_default(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/v1/prices/DE")
    prices = prices_of(answer)
    assert "DE" not in prices
    assert await price_of_send(client, GERMAN_MOBILE) == prices["*"]
    again = await client.delete("/v1/prices/DE")
    assert again.status_code == 404
    assert again.json()["error"]["field"] == "country"


async def test_the_default_price_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/v1/prices/*")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == "country"
    assert prices_of(await client.get("/v1/prices"))["*"] == 0.05


@pytest.mark.parametrize("country", ["rs", "USA", "U", "12", "XX", "ZZ", "**", "%2A%2A"])
async def test_a_bad_country_code_is_refused(client: httpx.AsyncClient, country: str) -> None:
    before = await client.get("/v1/prices")
    answer = await client.put(f"/v1/prices/{country}", json={"price_per_segment": 1})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["field"] == "country"
    assert (await client.get("/v1/prices")).json() == before.json()


@pytest.mark.parametrize(
    "body",
    [
        {"price_per_segment": -1},
        {"price_per_segment": 1001},
        {"price_per_segment": "0.0000001"},
        {"price_per_segment": "NaN"},
        {"price_per_segment": None},
        {"price": 1},
        {},
    ],
)
async def test_a_bad_price_is_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    before = await client.get("/v1/prices")
    answer = await client.put("/v1/prices/US", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] in ("price_per_segment", "price")
    assert (await client.get("/v1/prices")).json() == before.json()


async def test_a_free_country_sends_for_nothing(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    prices_of(await client.put("/v1/prices/US", json={"price_per_segment": 0}))
    assert await price_of_send(tenant, "+14155550100") == 0
    assert (await tenant.get("/v1/account")).json()["balance"] == 100


async def test_only_the_admin_changes_prices(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    before = prices_of(await client.get("/v1/prices"))
    for answer in [
        await tenant.put("/v1/prices/US", json={"price_per_segment": 0}),
        await tenant.put("/v1/prices/*", json={"price_per_segment": 0}),
        await tenant.delete("/v1/prices/US"),
    ]:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "forbidden"
    assert prices_of(await client.get("/v1/prices")) == before
    assert await price_of_send(tenant, "+14155550100") == 0.0079
