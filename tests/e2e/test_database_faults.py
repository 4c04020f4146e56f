"""A database that is down, silent or full: every request answers 503 with Retry-After in its
caller's shape, within the database timeout, nothing half-written, and service resumes as
soon as the database is back. Real server processes; PostgreSQL behind a proxy that refuses
or holds bytes, SQLite on a small filesystem that fills up."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync
from tests.faults.proxy import FaultyProxy, Mode
from textbridge.db import Database
from textbridge.models import Message

pytestmark = pytest.mark.slow

TIMEOUT = 1.5  # TEXTBRIDGE_DATABASE_TIMEOUT_SECONDS of the servers here
# A request may wait for a pooled connection, then on the statement: two deadlines, and a
# moment for a loaded machine.
WITHIN = 2 * TIMEOUT + 2


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def _assert_unavailable(server: ServerProcess) -> None:
    with server.client() as client:
        answer, took = _timed(
            lambda: client.post("/v1/messages", json={"to": ["+14155550100"], "text": "x"})
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert answer.headers["retry-after"] == "5"
        assert took < WITHIN, took
        answer, took = _timed(
            lambda: client.post(
                "/textlink/api/send-sms", json={"phone_number": "+14155550100", "text": "x"}
            )
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["ok"] is False  # TextLink's shape
        assert took < WITHIN, took
        answer, took = _timed(lambda: client.get("/health"))
        assert answer.status_code == 503, answer.text
        assert answer.json()["database"] is False
        assert took < WITHIN, took


def _assert_serving(server: ServerProcess) -> None:
    with server.client() as client:

        def sends() -> bool:
            answer = client.post("/v1/messages", json={"to": ["+14155550100"], "text": "back"})
            assert answer.status_code == 202, answer.text
            return True

        eventually_sync(sends, within=2 * TIMEOUT + 3, interval=0.1)
        assert client.get("/health").status_code == 200


def _assert_no_tracebacks(server: ServerProcess) -> None:
    log = server.log.read_text()
    assert "unhandled error" not in log
    assert "Traceback" not in log
    assert "database unavailable" in log


@pytest.mark.parametrize("mode", [Mode.REFUSE, Mode.HOLD])
async def test_postgresql_down_or_silent_answers_503_in_time_and_recovers(
    db: Database,
    database_url: str,
    tmp_path: Path,
    free_port: Callable[[], int],
    mode: Mode,
) -> None:
    if db.is_sqlite:
        pytest.skip("a database over the network")
    with FaultyProxy() as proxy:
        url = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        assert url != database_url
        server = ServerProcess(
            port=free_port(),
            data_dir=tmp_path,
            database_url=url,
            database_timeout_seconds=TIMEOUT,
        ).start()
        try:
            with server.client() as client:
                assert (
                    client.post(
                        "/v1/messages", json={"to": ["+14155550100"], "text": "before"}
                    ).status_code
                    == 202
                )
            async with db.transaction() as session:
                before = (await session.execute(select(func.count(Message.id)))).scalar_one()
            proxy.set(mode)
            _assert_unavailable(server)
            _assert_unavailable(server)  # and again: nothing piles up behind the first
            proxy.set(Mode.FORWARD)
            _assert_serving(server)
        finally:
            server.stop()
    _assert_no_tracebacks(server)
    async with db.transaction() as session:
        after = (await session.execute(select(func.count(Message.id)))).scalar_one()
    assert after - before == 1  # what was refused left nothing behind


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of its own, to fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Every byte left on the filesystem, in one file."""
    with path.open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    os.sync()


def test_a_full_disk_under_sqlite_answers_503_and_recovers(
    small_disk: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(),
        data_dir=small_disk,
        database_url=f"sqlite+aiosqlite:///{small_disk / 'textbridge.db'}",
        database_timeout_seconds=TIMEOUT,
        auto_migrate=True,
    )
    server.log = small_disk.parent / "server.log"  # not on the disk that fills
    server.start()
    filler = small_disk / "filler"
    try:
        _fill(filler)
        with server.client() as client:
            # Writes that fit in what SQLite's files already hold may still pass: send until
            # one needs the disk.
            for batch in range(40):
                to = [f"+1415200{batch:02d}{i:02d}" for i in range(100)]
                answer = client.post("/v1/messages", json={"to": to, "text": "x" * 150})
                if answer.status_code != 202:
                    break
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "database_unavailable"
            assert answer.headers["retry-after"] == "5"
            health = client.get("/health")
            assert health.status_code == 503, health.text
        filler.unlink()
        _assert_serving(server)
    finally:
        server.stop()
    _assert_no_tracebacks(server)
