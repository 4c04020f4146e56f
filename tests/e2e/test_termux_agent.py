"""Termux as a Textbridge device, with real processes: a server and ``textbridge agent
--backend termux`` with stand-ins for the Termux:API commands on its ``PATH``. A message goes
out through ``termux-sms-send`` and ends ``sent``; an SMS that lands in the inbox reaches
the conversation view; an export request replays the inbox's span, each SMS stored once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.test_termux import LIST, SEND, sms, write_inbox
from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync

pytestmark = pytest.mark.slow

SENDER = "+14153009777"


def test_a_termux_phone_sends_receives_and_replays(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("termux-sms-send", SEND), ("termux-sms-list", LIST)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    write_inbox(tmp_path, [sms(1, "history", "2026-11-01 09:00:00", SENDER)])
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url,
        device_keepalive_seconds=0.5, dispatch_poll_seconds=0.1,
    ).start()  # fmt: skip
    agent: subprocess.Popen[bytes] | None = None
    try:
        with server.tenant() as client:
            token = client.post("/v1/devices/pairing").json()["token"]
            env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                   "TERMUX_SENT": str(tmp_path / "sent.jsonl"),
                   "TERMUX_INBOX": str(tmp_path / "inbox.json"),
                   "TEXTBRIDGE_AGENT_TOKEN": token}  # fmt: skip
            with (tmp_path / "agent.log").open("wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "textbridge", "agent", "--server", server.url,
                     "--backend", "termux", "--sims", "1", "--inbox-seconds", "1",
                     "--state", str(tmp_path / "agent.json"), "--poll-seconds", "1"],
                    stdout=log, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            eventually_sync(lambda: len(client.get("/v1/devices").json()) == 1, within=30)
            device = client.get("/v1/devices").json()[0]["id"]

            sent = client.post("/v1/messages", json={"to": "+14153001234", "text": "from termux"})
            message_id = sent.json()["messages"][0]["id"]
            eventually_sync(  # sent through termux-sms-send
                lambda: client.get(f"/v1/messages/{message_id}").json()["status"] == "sent",
                within=30,
            )
            lines = (tmp_path / "sent.jsonl").read_text().splitlines()
            assert [json.loads(line) for line in lines] == [
                ["-n", "+14153001234", "-s", "0", "from termux"]
            ]

            def thread(phone: str) -> list[str]:
                found = client.get(f"/v1/conversations/{phone}/messages")
                return [m["text"] for m in found.json()["data"]] if found.status_code == 200 else []

            history = sms(1, "history", "2026-11-01 09:00:00", SENDER)
            write_inbox(tmp_path, [history, sms(2, "new in the inbox", sender=SENDER)])
            eventually_sync(lambda: thread(SENDER) == ["new in the inbox"], within=30)

            # The history the first run skipped comes back on request, and the SMS already
            # stored is not stored twice.
            span = {"since": "2026-10-31T00:00:00Z", "until": "2026-11-23T00:00:00Z"}
            assert client.post(f"/v1/devices/{device}/export", json=span).status_code == 202
            eventually_sync(lambda: len(thread(SENDER)) == 2, within=30)  # the replayed history
            assert sorted(thread(SENDER)) == ["history", "new in the inbox"]
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(timeout=10)
        server.stop()
