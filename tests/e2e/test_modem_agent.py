"""A GSM modem as a Textbridge device, with real processes: a server, a ``textbridge agent
--backend modem`` process on the pseudo-terminal of the simulated modem. Messages go out as
AT commands and end delivered by the modem's status reports; an SMS the modem receives
reaches the conversation view and the account's webhook, once, even when the agent is
killed and started again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync
from tests.webhooks.conftest import serving
from textbridge.simulator.modem import ModemSimulator

pytestmark = pytest.mark.slow

SETTINGS = {
    "device_keepalive_seconds": 1,
    "dispatch_poll_seconds": 0.1,
    "webhook_allow_private": 1,
    "webhook_poll_seconds": 0.05,
}


def start_agent(
    server: ServerProcess, token: str, modem: ModemSimulator, work: Path
) -> subprocess.Popen[bytes]:
    with (work / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "textbridge", "agent", "--server", server.url, "--token", token,
             "--backend", "modem", "--device", modem.path, "--name", "modem",
             "--state", str(work / "agent.json"), "--poll-seconds", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TEXTBRIDGE_DATA_DIR": str(work)},
        )  # fmt: skip


def test_a_modem_sends_and_receives(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, **SETTINGS
    ).start()
    modem = ModemSimulator(report_delay=0.05, fail_prefix="+1415555").start()
    agent: subprocess.Popen[bytes] | None = None
    try:
        with server.tenant() as client, serving() as receiver:
            body = {"url": receiver.url, "events": ["message.received"]}
            assert client.post("/v1/webhooks", json=body).status_code == 201
            token = client.post("/v1/devices/pairing").json()["token"]
            agent = start_agent(server, token, modem, tmp_path)
            eventually_sync(lambda: len(client.get("/v1/sim-cards").json()) == 1, within=30)

            to = [f"+1415300{n:04d}" for n in range(20)] + ["+14155550199"]
            sent = client.post("/v1/messages", json={"to": to, "text": "Привет " * 20})
            assert sent.status_code == 202, sent.text

            def finished() -> dict[str, str]:
                page = client.get("/v1/messages", params={"limit": 100}).json()["data"]
                return {m["to"]: m["status"] for m in page if m["direction"] == "out"}

            def reported() -> bool:
                statuses = finished()
                return len(statuses) == 21 and set(statuses.values()) <= {"delivered", "failed"}

            eventually_sync(reported, within=60)  # every message reported
            statuses = finished()
            assert statuses.pop("+14155550199") == "failed"
            assert set(statuses.values()) == {"delivered"}
            assert len(modem.sent) == 21 * 3  # 140 UCS-2 units: three parts each

            modem.receive("+14153009555", "Yes, count me in")
            eventually_sync(lambda: len(receiver.received) == 1, within=30)
            event = receiver.bodies()[0]
            assert event["data"]["from"] == "+14153009555"
            assert event["data"]["text"] == "Yes, count me in"
            conversation = client.get("/v1/conversations/+14153009555/messages").json()
            assert [m["text"] for m in conversation["data"]] == ["Yes, count me in"]
            eventually_sync(lambda: not modem.storage, within=10)  # the SMS deleted from the SIM

            # Killed after the server had it but before it left the SIM: posted again on
            # start, kept once.
            agent.kill()
            agent.wait(timeout=10)
            modem.receive("+14153009556", "after a crash")
            modem.storage[99] = modem.storage[min(modem.storage)]  # the same SMS, twice
            agent = start_agent(server, token, modem, tmp_path)
            eventually_sync(lambda: not modem.storage, within=30)  # both copies posted and deleted
            messages = client.get("/v1/conversations/+14153009556/messages").json()["data"]
            assert [m["text"] for m in messages] == ["after a crash"]
            eventually_sync(lambda: len(receiver.received) == 2, within=10)  # its webhook
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(timeout=10)
        modem.stop()
        server.stop()
