"""A real HTTP receiver on 127.0.0.1 for webhook tests."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.eventually import eventually


@dataclass
class Receiver:
    """A real server: answers each request with the next scripted status (200 when the script
    is used up), after ``delay`` seconds, and keeps what it received."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the status each request got
    delay: float = 0.0
    trickle: float = 0.0  # answer 200 one byte at a time, this many seconds apart
    location: str = ""  # sent with a 3xx
    answer_bytes: int = 2  # the answer's body: "ok", or this many bytes
    cut_off: int = 0  # answers the sender stopped reading before their end
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def bodies_ids(self) -> list[str]:
        """The event id of each request, in order."""
        return [headers["x-textbridge-event-id"] for headers, _ in self.received]

    def at(self, path: str) -> list[dict[str, Any]]:
        """The bodies that came to ``path``."""
        return [
            json.loads(b) for p, (_, b) in zip(self.paths, self.received, strict=True) if p == path
        ]


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops the sender's 6th concurrent connect, which then waits a
    # second for the SYN to be sent again: a receiver far slower than the sender.
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def serving(port: int = 0) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1:``port`` (any free one by default)."""
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(state.delay)
            with lock:
                state.paths.append(self.path)
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 200
                state.answers.append(status)
            self.send_response(status)
            if state.trickle:
                self.send_header("content-length", "100")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(100):
                        self.wfile.write(b".")
                        self.wfile.flush()
                        time.sleep(state.trickle)
                return
            if state.location:
                self.send_header("location", state.location)
            self.send_header("content-length", str(state.answer_bytes))
            self.end_headers()
            if state.answer_bytes == 2:
                self.wfile.write(b"ok")
                return
            try:
                for _ in range(state.answer_bytes // 65536):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                state.cut_off += 1

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", port), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as state:
        yield state


async def delivered(client: httpx.AsyncClient, endpoint: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's newest delivery, once it is recorded as delivered."""

    async def newest() -> dict[str, Any]:
        page = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()["data"]
        assert page, "no delivery"
        assert page[0]["status"] == "delivered", page[0]
        found: dict[str, Any] = page[0]
        return found

    return await eventually(newest)


async def subscribe(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    answer = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["contact.tag_changed"], **extra}
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created
