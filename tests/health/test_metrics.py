"""``/metrics`` counts every account's messages: it answers only a scraper holding
``METRICS_TOKEN``, and no one when none is set."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_KEY, METRICS_TOKEN, client_of
from textbridge.db import Database
from textbridge.settings import Settings


async def test_metrics_answer_only_their_token(
    client: httpx.AsyncClient, scraper: httpx.AsyncClient
) -> None:
    assert (await scraper.get("/metrics")).status_code == 200
    for authorization in (
        None,
        f"Bearer {ADMIN_KEY}",  # not even the admin's key: it is no scraper's
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
    ):
        headers = {"Authorization": authorization} if authorization else {}
        async with httpx.AsyncClient(
            transport=client._transport, base_url=str(client.base_url), headers=headers
        ) as caller:
            answer = await caller.get("/metrics")
        assert answer.status_code == 401, (authorization, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
        assert "textbridge_" not in answer.text


async def test_without_a_token_metrics_answer_no_one(settings: Settings, db: Database) -> None:
    async with client_of(settings, metrics_token=None) as client:
        for authorization in (f"Bearer {ADMIN_KEY}", f"Bearer {METRICS_TOKEN}", ""):
            answer = await client.get("/metrics", headers={"Authorization": authorization})
            assert answer.status_code == 401, answer.text
            assert "TEXTBRIDGE_METRICS_TOKEN" in answer.json()["error"]["message"]
