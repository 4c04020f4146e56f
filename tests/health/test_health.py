from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from structlog.testing import capture_logs

from tests.conftest import client_of, wait_for
from textbridge.channels.registry import SIMULATOR_WARNING
from textbridge.db import Database
from textbridge.settings import Environment, Settings


async def test_health_reports_database_queue_and_channels(client: httpx.AsyncClient) -> None:
    answer = await client.get("/health", headers={"Authorization": ""})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["database"] is True
    assert body["channels"] == {"simulator": True, "device": True}
    assert body["simulator"] is True  # development: said loudly
    assert body["warnings"] == [SIMULATOR_WARNING]
    assert body["queue_depth"] == 0
    assert body["oldest_queued_seconds"] is None


async def test_production_has_no_simulator_and_the_start_up_log_says_when_it_has(
    settings: Settings, db: Database
) -> None:
    production = Environment.PRODUCTION
    with capture_logs() as logs:
        async with client_of(settings, env=production) as client:
            body = (await client.get("/health")).json()
    assert body["channels"] == {"device": True}
    assert (body["status"], body["simulator"], body["warnings"]) == ("ok", False, [])
    assert SIMULATOR_WARNING not in [entry["event"] for entry in logs]
    with capture_logs() as logs:
        async with client_of(settings, env=production, simulator_enabled=True) as client:
            assert (await client.get("/health")).json()["simulator"] is True
    warned = [entry for entry in logs if entry["event"] == SIMULATOR_WARNING]
    assert [entry["log_level"] for entry in warned] == ["warning"]


async def test_health_counts_scheduled_work_only_once_due(client: httpx.AsyncClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await client.post(
        "/v1/messages", json={"to": "+14155550100", "text": "later", "schedule_at": later}
    )
    assert answer.json()["status"] == "accepted"
    assert (await client.get("/health")).json()["queue_depth"] == 0


async def test_metrics_count_accepted_messages_and_statuses(
    client: httpx.AsyncClient, scraper: httpx.AsyncClient
) -> None:
    def counter(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    before = (await scraper.get("/metrics")).text
    answer = await client.post(
        "/v1/messages", json={"to": ["+14155550100", "+14155550101"], "text": "x"}
    )
    for message in answer.json()["messages"]:
        await wait_for(client, message["id"])
    after = (await scraper.get("/metrics")).text
    name = "textbridge_messages_accepted_total"
    assert counter(after, name) - counter(before, name) == 2
    assert 'textbridge_messages{status="delivered"}' in after
    assert "textbridge_queue_depth 0.0" in after
