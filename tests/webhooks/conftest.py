"""A real HTTP receiver on 127.0.0.1 for webhook tests."""

from __future__ import annotations

import asyncio
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


@dataclass
class Receiver:
    """A real server: answers each request with the next scripted status (200 when the script
    is used up), after ``delay`` seconds, and keeps what it received."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def at(self, path: str) -> list[dict[str, Any]]:
        """The bodies that came to ``path``."""
        return [
            json.loads(b) for p, (_, b) in zip(self.paths, self.received, strict=True) if p == path
        ]


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
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
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


async def until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def subscribe(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    answer = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["contact.tag_changed"], **extra}
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created
