"""Clients that hold a connection without finishing their request, or hang up before the
answer, against a real ``textbridge serve``: the server cuts the first and logs the second as
nothing of ours (issue 13, items 5 and 6)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from tests.e2e.test_device_events import Stream, register_phone
from tests.eventually import eventually_sync

pytestmark = pytest.mark.slow

# Small limits, so every cut comes within a few seconds.
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 1.0
LIMITS = {
    "header_timeout_seconds": HEADER_TIMEOUT,
    "body_timeout_seconds": BODY_TIMEOUT,
    "body_min_rate": 1000,  # bytes/s: each 1,000 received give the body another second
    "max_connections": 20,
    "device_keepalive_seconds": 0.3,
    "log_level": "debug",
}
AUTH = f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[ServerProcess]:
    """One server for the module, on its own SQLite file: what is tested is the HTTP layer."""
    data_dir = tmp_path_factory.mktemp("bad-clients")
    process = ServerProcess(
        port=free_port(),
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'textbridge.db'}",
        **LIMITS,
    ).start()
    try:
        yield process
    finally:
        process.stop()


class Raw:
    """A socket speaking HTTP by hand, a byte at a time if need be."""

    def __init__(self, server: ServerProcess, first: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.sock.setblocking(False)
        self.received = b""
        self.closed_at: float | None = None
        self.opened_at = time.monotonic()
        if first:
            self.send(first)

    def send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError:  # reset: the server closed it
            self.closed_at = self.closed_at or time.monotonic()

    def closed(self) -> bool:
        """Whether the server closed the connection (what it sent first is kept)."""
        while self.closed_at is None:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                return False
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_at = time.monotonic()
            self.received += chunk
        return True

    def hang_up(self) -> None:
        self.sock.close()


def trickle(clients: list[Raw], line: bytes, *, every: float, until: float) -> None:
    """Send ``line`` on every client still open, every ``every`` seconds, until all are closed
    or ``until`` seconds have passed."""
    start = time.monotonic()
    while time.monotonic() - start < until and not all(c.closed() for c in clients):
        for client in clients:
            if not client.closed():
                client.send(line)
        time.sleep(every)


def test_a_client_trickling_its_headers_is_cut_at_the_header_timeout(
    server: ServerProcess,
) -> None:
    clients = [Raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
    # And one whose first request is whole, the second on the same connection trickled.
    kept_alive = Raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n")
    try:
        # A header line every 0.25 s: never idle, never done.
        trickle([*clients, kept_alive], b"X-Slow: 1\r\n", every=0.25, until=HEADER_TIMEOUT + 3)
        for client in [*clients, kept_alive]:
            assert client.closed_at is not None, "still open"
            assert client.closed_at - client.opened_at < HEADER_TIMEOUT + 1.5
        for client in clients:
            assert client.received.startswith(b"HTTP/1.1 408 ")
        assert kept_alive.received.startswith(b"HTTP/1.1 200 ")
        assert b"HTTP/1.1 408 " in kept_alive.received
    finally:
        for client in [*clients, kept_alive]:
            client.hang_up()


def test_a_client_trickling_its_body_is_cut(server: ServerProcess) -> None:
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000\r\n" + AUTH + b"\r\n"
    )
    client = Raw(server, head)
    try:
        # 10 bytes/s, far below the minimum rate.
        trickle([client], b" ", every=0.1, until=BODY_TIMEOUT + 3)
        assert client.closed_at is not None, "still open"
        assert client.closed_at - client.opened_at < BODY_TIMEOUT + 1.5
    finally:
        client.hang_up()


def test_beyond_max_connections_clients_are_turned_away_at_once_until_slots_free(
    server: ServerProcess,
) -> None:
    clients = [Raw(server, b"GET /health HTTP/1.1\r\n") for _ in range(40)]
    try:
        # 20 hold the slots; the others are answered at once (before the header timeout would
        # close them all), not left hanging.
        eventually_sync(lambda: sum(c.closed() for c in clients) >= 20)
        turned_away = [c for c in clients if c.closed()]
        for client in turned_away:
            assert not client.received or client.received.startswith(b"HTTP/1.1 503 ")

        # Once the header timeout frees the slots, an ordinary client is served.
        def served() -> bool:
            try:
                answer = httpx.get(f"{server.url}/health", timeout=2)
            except httpx.TransportError:
                return False  # turned away before its request was read
            assert answer.status_code in (200, 503), answer.status_code
            return answer.status_code == 200

        eventually_sync(served, within=HEADER_TIMEOUT + 5, interval=0.2)
    finally:
        for client in clients:
            client.hang_up()


def test_streams_and_steady_uploads_outlive_the_timeouts(server: ServerProcess) -> None:
    with server.tenant() as tenant:
        token = tenant.post("/v1/devices/pairing").json()["token"]
        device = register_phone(server.url, token, "stream phone")
        stream = Stream(f"{server.url}/api/mobile/v1/events", device["token"])
        try:
            stream.wait_for(":connected")

            # A CSV sent at 2,000 bytes/s for longer than the body timeout: above the minimum
            # rate, so it is read to the end.
            rows = [f"+1415555{i:04d},n{i}\n".encode() for i in range(300)]

            def slowly() -> Iterator[bytes]:
                yield b"phone,first_name\n"
                for start in range(0, len(rows), 6):
                    time.sleep(0.05)
                    yield b"".join(rows[start : start + 6])

            began = time.monotonic()
            imported = tenant.post(
                "/v1/contacts/import", content=slowly(), headers={"content-type": "text/csv"}
            )
            assert imported.status_code == 200, imported.text
            assert imported.json()["created"] == 300
            assert time.monotonic() - began > BODY_TIMEOUT + 1

            # The stream, open for longer than both timeouts, still hears its keepalives.
            time.sleep(max(0.0, HEADER_TIMEOUT + BODY_TIMEOUT - (time.monotonic() - began)))
            heard = stream.lines.count(":keepalive")
            eventually_sync(lambda: stream.lines.count(":keepalive") > heard)
        finally:
            stream.close()


def test_a_client_hanging_up_mid_request_is_not_an_error(server: ServerProcess) -> None:
    logged = server.log.stat().st_size
    client = Raw(
        server,
        b"POST /v1/contacts/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 1000\r\n" + AUTH + b"\r\nphone\n+1415",
    )
    time.sleep(0.2)  # the import is waiting for the rest of its body
    client.hang_up()

    def noticed() -> str:
        log = _since(server.log, logged)
        assert "client hung up" in log or "unhandled error" in log, log
        return log

    eventually_sync(noticed)
    time.sleep(0.2)  # anything logged after it
    log = _since(server.log, logged)
    assert "unhandled error" not in log
    assert "Traceback" not in log


def _since(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")
