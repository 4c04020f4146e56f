"""The phone's event stream on a real server: MessageEnqueued when it is given a message,
keepalive comments, and a client that disconnects and reconnects."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync

pytestmark = pytest.mark.slow

# A keepalive often: the server notices a closed stream at its next write, and stops without
# waiting out its graceful-shutdown time for streams nobody reads.
QUICK = {"device_keepalive_seconds": 0.5, "dispatch_poll_seconds": 0.1}


class Stream:
    """An SSE client in a thread, keeping every line it reads."""

    def __init__(self, url: str, token: str) -> None:
        self.lines: list[str] = []
        self.url, self.token = url, token
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        try:
            with self.client.stream("GET", self.url, headers=headers) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                for line in answer.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass  # closed

    def wait_for(self, line: str) -> None:
        def read() -> bool:
            assert line in self.lines, self.lines
            return True

        eventually_sync(read)

    def close(self) -> None:
        self.client.close()
        self.thread.join(timeout=5)


def register_phone(url: str, token: str, name: str, sims: int = 1) -> dict[str, Any]:
    """A phone registered with the pairing token, as the app does it."""
    cards = [{"simNumber": n, "slotIndex": n - 1} for n in range(1, sims + 1)]
    answer = httpx.post(
        f"{url}/api/mobile/v1/device",
        json={"name": name, "pushToken": None, "simCards": cards},
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    device: dict[str, Any] = answer.json()
    return device


@contextmanager
def phone_on_stream(
    api: ServerProcess, name: str = "SSE phone"
) -> Iterator[tuple[httpx.Client, dict[str, Any], Stream]]:
    """A new account's client, its phone, and the phone's stream, connected."""
    with api.tenant() as client:
        token = client.post("/v1/devices/pairing").json()["token"]
        device = register_phone(api.url, token, name)
        stream = Stream(f"{api.url}/api/mobile/v1/events", device["token"])
        try:
            stream.wait_for(":connected")
            yield client, device, stream
        finally:
            stream.close()


def test_the_stream_tells_the_phone_and_survives_a_reconnect(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, **QUICK
    ).start()
    try:
        with server.tenant() as client:
            token = client.post("/v1/devices/pairing").json()["token"]
            device = register_phone(server.url, token, "SSE phone")
            url = f"{server.url}/api/mobile/v1/events"
            for attempt in range(2):  # connect, disconnect, connect again
                stream = Stream(url, device["token"])
                try:
                    stream.wait_for(":keepalive")
                    client.post("/v1/messages", json={"to": "+14155550100", "text": f"#{attempt}"})
                    stream.wait_for("event: MessageEnqueued")
                    assert stream.lines[stream.lines.index("event: MessageEnqueued") + 1] == (
                        "data: null"
                    )
                finally:
                    stream.close()
            pulled = httpx.get(
                f"{server.url}/api/mobile/v1/message",
                headers={"authorization": f"Bearer {device['token']}"},
            ).json()
            assert sorted(m["message"] for m in pulled) == ["#0", "#1"]
            listed = client.get("/v1/devices").json()
            assert listed[0]["online"] is True
    finally:
        server.stop()


def test_the_stream_tells_the_phone_of_a_cancel(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, **QUICK
    ).start()
    try:
        with phone_on_stream(server) as (client, _, stream):
            sent = client.post("/v1/messages", json={"to": "+14155550100", "text": "x"})
            message_id = sent.json()["messages"][0]["id"]
            stream.wait_for("event: MessageEnqueued")  # given to the phone
            cancelled = client.post(f"/v1/messages/{message_id}/cancel")
            assert cancelled.json()["status"] == "dispatching", cancelled.text
            stream.wait_for("event: MessageCancelled")
            told = stream.lines[stream.lines.index("event: MessageCancelled") + 1]
            assert told == f'data: {{"messageId":"{message_id}"}}'
    finally:
        server.stop()


def test_a_stream_held_by_an_api_process_hears_what_a_worker_gave_the_phone(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    """Scale-out: the phone's stream is on an API-only process, a separate worker process gives
    it the message; the stream hears it by the database (NOTIFY), not at the next pull."""
    if database_url.startswith("sqlite"):
        pytest.skip("scale-out is a PostgreSQL deployment")
    common = {"data_dir": tmp_path, "database_url": database_url, **QUICK}
    common["dispatch_poll_seconds"] = 60  # the worker hears of the message by NOTIFY
    api = ServerProcess(port=free_port(), role="api", **common).start()
    worker = ServerProcess(port=free_port(), command="worker", **common).start()
    try:
        with phone_on_stream(api, "far phone") as (client, device, stream):
            sent = client.post("/v1/messages", json={"to": "+14155550100", "text": "x"})
            message_id = sent.json()["messages"][0]["id"]
            stream.wait_for("event: MessageEnqueued")
            assert client.get(f"/v1/messages/{message_id}").json()["device_id"] == device["id"]
            cancelled = client.post(f"/v1/messages/{message_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            stream.wait_for("event: MessageCancelled")
    finally:
        worker.stop()
        api.stop()


def test_an_export_request_and_new_settings_reach_the_phone(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, **QUICK
    ).start()
    try:
        with phone_on_stream(server) as (client, device, stream):
            span = {"since": "2026-11-01T00:00:00+02:00", "until": "2026-11-02T00:00:00Z"}
            export = f"/v1/devices/{device['id']}/export"
            assert client.post(export, json=span).status_code == 202
            stream.wait_for("event: MessagesExportRequested")
            told = stream.lines[stream.lines.index("event: MessagesExportRequested") + 1]
            assert told == (
                'data: {"since":"2026-10-31T22:00:00.000Z","until":"2026-11-02T00:00:00.000Z"}'
            )
            backwards = {"since": span["until"], "until": span["since"]}
            refused = client.post(export, json=backwards)
            assert refused.status_code == 400
            assert "until must be after since" in refused.text
            naive = client.post(export, json={**span, "since": "2026-11-01T00:00:00"})
            assert naive.status_code == 400
            assert client.post("/v1/devices/nope/export", json=span).status_code == 404
            sim = client.get("/v1/sim-cards").json()[0]["id"]
            client.patch(f"/v1/sim-cards/{sim}", json={"per_minute": 5})
            stream.wait_for("event: SettingsUpdated")  # the phone re-reads its limit
    finally:
        server.stop()
