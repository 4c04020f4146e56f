"""Phones as real processes: a server and two ``textbridge agent`` devices with two SIMs each.
A thousand messages spread over the four SIMs within their limits; one agent is killed
mid-way and every message still ends delivered, none that an agent reported is sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync

pytestmark = pytest.mark.slow

LIMIT = 600  # per SIM and minute: the survivor's two SIMs can take everything in a minute

DEVICES = {
    "device_take_seconds": 3,
    "device_send_seconds": 3,  # a phone that took messages and is silent this long is gone
    "device_keepalive_seconds": 1,
    "dispatch_poll_seconds": 0.1,
    "maintenance_interval_seconds": 0.5,
    "device_online_seconds": 15,  # a killed phone is offline after this
}


def start_agent(
    server: ServerProcess, token: str, name: str, work: Path
) -> subprocess.Popen[bytes]:
    with (work / f"{name}.log").open("wb") as log:  # the child keeps its own copy
        return _popen(server, token, name, work, log)


def _popen(
    server: ServerProcess, token: str, name: str, work: Path, log: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "textbridge", "agent", "--server", server.url, "--token", token,
         "--name", name, "--state", str(work / f"{name}.json"), "--sims", "2",
         "--send-delay-ms", "5", "--poll-seconds", "1", "--journal", str(work / f"{name}.jsonl")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TEXTBRIDGE_DATA_DIR": str(work)},
    )  # fmt: skip


def journal(work: Path, name: str) -> list[dict[str, Any]]:
    path = work / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_two_agents_deliver_a_thousand_and_survive_a_kill(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, **DEVICES
    ).start()
    agents: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with server.tenant() as client:
            token = client.post("/v1/devices/pairing").json()["token"]
            for name in ("alpha", "beta"):
                agents[name] = start_agent(server, token, name, tmp_path)
            eventually_sync(lambda: len(client.get("/v1/sim-cards").json()) == 4, within=30)
            for sim in client.get("/v1/sim-cards").json():
                client.patch(f"/v1/sim-cards/{sim['id']}", json={"per_minute": LIMIT})
            beta = next(d for d in client.get("/v1/devices").json() if d["name"] == "beta")
            pinned = beta["sim_cards"][1]["id"]  # the survivor's second SIM

            ids: list[str] = []
            for batch in range(10):
                to = [f"+1415300{batch * 100 + n:04d}" for n in range(100)]
                answer = client.post("/v1/messages", json={"to": to, "text": "via phones"})
                assert answer.status_code == 202, answer.text
                ids += [m["id"] for m in answer.json()["messages"]]
            for n in range(5):
                answer = client.post(
                    "/textlink/api/send-sms",
                    json={"phone_number": f"+14153009{n:03d}", "text": "p", "sim_card_id": pinned},
                )
                assert answer.json()["ok"] is True

            def delivered() -> int:
                return sum(1 for e in journal(tmp_path, "alpha") + journal(tmp_path, "beta")
                           if e["event"] == "reported")  # fmt: skip

            eventually_sync(lambda: delivered() >= 250, within=60)  # the agents started sending
            agents["alpha"].send_signal(signal.SIGKILL)
            agents["alpha"].wait(timeout=10)

            # Two loaded cores (other suites running) take two minutes for the survivor's 900.
            eventually_sync(lambda: _count(client, "delivered") >= 1005, within=300)
            assert _count(client, "dispatching") + _count(client, "queued") == 0
            pinned_sent = client.get("/v1/messages", params={"phone": "+14153009000"}).json()
            assert pinned_sent["data"][0]["status"] == "delivered"
            assert pinned_sent["data"][0]["sim_card_id"] == pinned
    finally:
        for process in agents.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        server.stop()

    alpha, beta = journal(tmp_path, "alpha"), journal(tmp_path, "beta")
    reported_by_alpha = {e["id"] for e in alpha if e["event"] == "reported"}
    sent_by_beta = Counter(e["id"] for e in beta if e["event"] == "sent")
    assert not reported_by_alpha & set(sent_by_beta)  # nothing reported is sent again
    assert set(sent_by_beta.values()) == {1}
    sent_by_alpha = {e["id"] for e in alpha if e["event"] == "sent"}
    assert len(sent_by_alpha - reported_by_alpha) <= 4  # the kill's window: one SMS per SIM
    assert {e["sim"] for e in alpha + beta} == {1, 2}  # both SIMs of each phone worked
    per_sim = Counter((name, e["sim"]) for name, rows in (("alpha", alpha), ("beta", beta))
                      for e in rows if e["event"] == "sent")  # fmt: skip
    assert max(per_sim.values()) <= LIMIT  # the run is shorter than a minute: within limits


def _count(client: httpx.Client, status: str) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"status": status, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/messages", params=params).json()
        total += len(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total
