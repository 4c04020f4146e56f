"""The Termux backend against stand-ins for the Termux:API commands (``termux-sms-send``,
``termux-sms-list``) on ``PATH``, run as real processes: the arguments it sends with, errors,
and the inbox read from where the last run stopped, without replaying history."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.eventually import eventually
from textbridge.agent.backend import Events, Incoming
from textbridge.agent.termux import TermuxBackend

SEND = f"""#!{sys.executable}
import json, os, sys
if sys.argv[2].startswith("+1999"):
    sys.stderr.write("Failed to send: radio off\\n")
    sys.exit(1)
with open(os.environ["TERMUX_SENT"], "a") as sent:
    sent.write(json.dumps(sys.argv[1:]) + "\\n")
"""
LIST = f"""#!{sys.executable}
import os, sys
assert sys.argv[1:4] == ["-t", "inbox", "-l"], sys.argv
print(open(os.environ["TERMUX_INBOX"]).read())
"""


@pytest.fixture
def termux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("termux-sms-send", SEND), ("termux-sms-list", LIST)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("TERMUX_SENT", str(tmp_path / "sent.jsonl"))
    monkeypatch.setenv("TERMUX_INBOX", str(tmp_path / "inbox.json"))
    write_inbox(tmp_path, [sms(1, "old news")])
    return tmp_path


def sms(
    number: int, body: str, received: str = "2026-11-22 10:00:00", sender: str = "+447700900123"
) -> dict[str, Any]:
    return {"threadid": 3, "type": "inbox", "read": False, "number": sender,
            "received": received, "body": body, "_id": number}  # fmt: skip


def write_inbox(folder: Path, messages: list[dict[str, Any]]) -> None:
    # termux-sms-list shows the newest first
    (folder / "inbox.json").write_text(json.dumps(sorted(messages, key=lambda m: -m["_id"])))


async def test_sends_with_the_sim_slot(termux: Path) -> None:
    backend = TermuxBackend(sims=2, seen=termux / "seen")
    assert await backend.send("m1", "+15550001111", "hello there", 2) is None
    error = await backend.send("m2", "+19995550000", "x", 1)
    sent = [json.loads(line) for line in (termux / "sent.jsonl").read_text().splitlines()]
    assert sent == [["-n", "+15550001111", "-s", "1", "hello there"]]
    assert error is not None
    assert "radio off" in error


async def test_a_missing_command_is_an_error(termux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(termux / "nowhere"))
    error = await TermuxBackend().send("m1", "+15550001111", "x", 1)
    assert error is not None
    assert "Termux:API" in error


async def test_inbox_from_where_it_stopped(termux: Path) -> None:
    received: list[Incoming] = []

    async def post(item: Incoming) -> None:
        received.append(item)

    events = Events(delivered=lambda *_: None, received=post)
    backend = TermuxBackend(seen=termux / "seen", inbox_seconds=0.05)
    await backend.start(events)  # the first run: "old news" is history
    write_inbox(termux, [sms(1, "old news"), sms(2, "new one"), sms(3, "and another")])
    await eventually(lambda: len(received) >= 2)
    await backend.close()
    assert [r.text for r in received] == ["new one", "and another"]
    assert received[0].id == "termux-2"
    assert received[0].sender == "+447700900123"
    assert (termux / "seen").read_text() == "3"

    write_inbox(termux, [sms(1, "old news"), sms(2, "new one"), sms(3, "and another"),
                         sms(4, "while it was off")])  # fmt: skip
    again = TermuxBackend(seen=termux / "seen", inbox_seconds=0.05)
    await again.start(events)
    await eventually(lambda: len(received) >= 3)
    await asyncio.sleep(0.2)  # the inbox is read every 0.05 s: nothing is posted twice
    await again.close()
    assert [r.text for r in received] == ["new one", "and another", "while it was off"]


async def test_an_export_replays_the_inbox_in_the_span(termux: Path) -> None:
    write_inbox(termux, [sms(1, "before", "2026-11-01 09:00:00"),
                         sms(2, "inside", "2026-11-02 12:00:00"),
                         sms(3, "also inside", "2026-11-03 08:00:00"),
                         sms(4, "after", "2026-11-05 00:00:00")])  # fmt: skip
    local = datetime(2026, 11, 2).astimezone().tzinfo  # the phone's time, as Termux gives it
    since = datetime(2026, 11, 2, tzinfo=local)
    until = datetime(2026, 11, 4, tzinfo=local)
    replayed = await TermuxBackend(seen=termux / "seen").replay(since, until)
    assert [(r.id, r.text) for r in replayed] == [
        ("termux-2", "inside"),
        ("termux-3", "also inside"),
    ]
