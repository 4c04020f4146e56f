"""The device phases of ``python -m textbridge.bench``: phones speaking the SMSGate protocol.

``device_protocol``: messages per second through ``textbridge agent`` processes (simulated
SIMs, no send delay), from the first acceptance to the last ``delivered``.

``sse_streams``: how many ``GET /api/mobile/v1/events`` streams one ``serve`` process holds,
what each costs in resident memory, and how soon a ``MessageEnqueued`` reaches them. The
streams are raw asyncio connections reading the chunked body, so the bench's own share of the
two cores stays small next to the server's.

Both talk to 127.0.0.1 only and stop at a deadline (``PHASE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from textbridge.db import Database
from textbridge.models import Message

PHASE_SECONDS = 120.0
_FINAL = ("delivered", "failed", "expired")
_PROTOCOL_TEXT = "Through phones"
_SSE_TEXT = "Through streams"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank of sorted ``values``; NaN for none."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(len(values) * fraction) - 1)]


def raise_fd_limit() -> tuple[int, int]:
    """Lift this process's open-file soft limit to its hard limit; the ``serve`` processes the
    bench starts afterwards inherit it. Answers the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_mib(pid: int) -> float:
    """The process's resident memory (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def fd_limit(pid: int) -> int:
    """The process's soft limit on open files, from ``/proc/<pid>/limits``."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return -1


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bodies(total: int, first: int, text: str) -> list[dict[str, Any]]:
    """100-recipient ``POST /v1/messages`` bodies, every number distinct."""
    numbers = [f"+1415{first + n:07d}" for n in range(total)]
    return [{"to": numbers[start : start + 100], "text": text} for start in range(0, total, 100)]


async def accept_all(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> None:
    """Every body accepted, by 8 concurrent senders as fast as the server takes them."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def sender() -> None:
        while not queue.empty():
            answer = await client.post("/v1/messages", json=queue.get_nowait())
            answer.raise_for_status()

    await asyncio.gather(*(sender() for _ in range(8)))


async def _pairing_token(client: httpx.AsyncClient) -> str:
    answer = await client.post("/v1/devices/pairing")
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


# Messages through agents ----------------------------------------------------------------------


def device_protocol(
    url: str, database_url: str, work: Path, *, admin_key: str, pid: int, agents: int, total: int
) -> dict[str, Any]:
    """``agents`` ``textbridge agent`` processes with two simulated SIMs each (no send delay,
    a pull every second) deliver ``total`` messages accepted in 100-recipient requests."""
    deadline = time.monotonic() + PHASE_SECONDS
    token = httpx.post(
        f"{url}/v1/devices/pairing", headers={"Authorization": f"Bearer {admin_key}"}
    ).json()["token"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(agents):
            name = f"agent-{n}"
            command = [
                sys.executable, "-m", "textbridge", "agent", "--server", url, "--token", token,
                "--backend", "simulated", "--sims", "2", "--send-delay-ms", "0",
                "--poll-seconds", "1", "--state", str(work / f"{name}.json"), "--name", name,
            ]  # fmt: skip
            env = {**os.environ, "TEXTBRIDGE_DATA_DIR": str(work)}
            env["TEXTBRIDGE_LOG_LEVEL"] = "warning"
            with (work / f"{name}.log").open("wb") as log:  # the child keeps its own copy
                processes.append(
                    subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                )
        work_done = _through_agents(url, database_url, admin_key, pid, processes, total, deadline)
        return asyncio.run(work_done)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _through_agents(
    url: str,
    database_url: str,
    admin_key: str,
    pid: int,
    processes: list[subprocess.Popen[bytes]],
    total: int,
    deadline: float,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        sims: list[dict[str, Any]] = []
        while len(sims) < 2 * len(processes):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("the agents did not register; see their logs")
            await asyncio.sleep(0.2)
            sims = (await client.get("/v1/sim-cards")).json()
        for sim in sims:  # no per-SIM limit: the figure is the protocol's
            answer = await client.patch(
                f"/v1/sim-cards/{sim['id']}", json={"per_minute": None, "per_day": None}
            )
            answer.raise_for_status()
        pids = [pid, *(p.pid for p in processes)]
        cpu_before = [cpu_seconds(p) for p in pids]
        await accept_all(client, _bodies(total, 7_000_000, _PROTOCOL_TEXT))
    db = Database(database_url)
    try:
        while time.monotonic() < deadline:  # then the figures say how many were delivered
            if await _final(db, _PROTOCOL_TEXT) >= total:
                break
            await asyncio.sleep(0.5)
        cpu = [cpu_seconds(p) - before for p, before in zip(pids, cpu_before, strict=True)]
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(Message.accepted_at, Message.delivered_at, Message.status).where(
                        Message.text == _PROTOCOL_TEXT
                    )
                )
            ).all()
    finally:
        await db.dispose()
    delivered = [r for r in rows if r.status == "delivered"]
    first = min(r.accepted_at for r in rows)
    last = max((r.delivered_at for r in delivered), default=first)
    latencies = sorted((r.delivered_at - r.accepted_at).total_seconds() * 1000 for r in delivered)
    span = (last - first).total_seconds()
    return {
        "agents": len(processes),
        "sims": len(sims),
        "messages": len(rows),
        "delivered": len(delivered),
        "seconds": span,
        "per_second": len(delivered) / span if span > 0 else math.nan,
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "server_cpu_seconds": cpu[0],
        "agents_cpu_seconds": sum(cpu[1:]),
    }


async def _final(db: Database, text: str) -> int:
    async with db.transaction() as session:
        count: int = (
            await session.execute(
                select(func.count()).where(Message.text == text, Message.status.in_(_FINAL))
            )
        ).scalar_one()
        return count


# Event streams -------------------------------------------------------------------------------


@dataclass
class _Stream:
    """What one event stream saw: wall-clock times, to compare with the database's."""

    device_id: str
    token: str
    connected_at: float | None = None
    enqueued_at: float | None = None  # the first MessageEnqueued
    keepalives: int = 0
    error: str | None = None


async def _hold(stream: _Stream, port: int, opening: asyncio.Semaphore) -> None:
    """``GET /events`` over a bare connection, reading the chunked body until cancelled."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with opening:  # a bounded number of handshakes at once; held streams are not
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = (
                f"GET /api/mobile/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {stream.token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            writer.write(request.encode())
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(status.decode(errors="replace").strip() or "no answer")
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                chunked = chunked or line.lower().startswith(b"transfer-encoding: chunked")
            if not chunked:
                raise RuntimeError("the stream is not chunked")
            await _chunk(stream, reader)  # :connected
        while await _chunk(stream, reader):
            pass
        stream.error = "closed by the server"
    except (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError) as exc:
        stream.error = str(exc) or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


async def _chunk(stream: _Stream, reader: asyncio.StreamReader) -> bool:
    """One chunk (the server sends one SSE item per chunk); False at the body's end."""
    size = int((await reader.readline()).split(b";")[0], 16)
    if size == 0:
        return False
    data = await reader.readexactly(size + 2)
    if data.startswith(b":connected"):
        stream.connected_at = time.time()
    elif data.startswith(b":keepalive"):
        stream.keepalives += 1
    elif data.startswith(b"event: MessageEnqueued") and stream.enqueued_at is None:
        stream.enqueued_at = time.time()
    return True


def sse_streams(
    url: str, database_url: str, *, admin_key: str, pid: int, devices: int, keepalive: float
) -> dict[str, Any]:
    """``devices`` phones registered with one SIM each, each holding its event stream open to
    the ``serve`` process ``pid``; then one message per phone."""
    return asyncio.run(_sse(url, database_url, admin_key, pid, devices, keepalive))


async def _sse(
    url: str, database_url: str, admin_key: str, pid: int, count: int, keepalive: float
) -> dict[str, Any]:
    deadline = time.monotonic() + PHASE_SECONDS
    for who, limit in (
        ("the bench", resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        ("serve", fd_limit(pid)),
    ):
        if 0 <= limit < count + 256:  # a socket per stream, and the database's and the API's
            print(f"{who} may open {limit} files: too few for {count} streams", file=sys.stderr)
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, limits=httpx.Limits(max_connections=16)
    ) as client:
        pairing = await _pairing_token(client)
        started = time.monotonic()
        streams = await _register(client, pairing, count)
        registered_in = time.monotonic() - started

        await asyncio.sleep(1)  # the registrations' garbage settles
        rss_before, cpu_before, cpu_self = rss_mib(pid), cpu_seconds(pid), time.process_time()
        opening = asyncio.Semaphore(64)
        port = httpx.URL(url).port or 80
        started = time.monotonic()
        tasks = [asyncio.create_task(_hold(s, port, opening)) for s in streams]
        try:
            while time.monotonic() < min(deadline, started + 60):
                if all(s.connected_at or s.error for s in streams):
                    break
                await asyncio.sleep(0.1)
            connect_seconds = time.monotonic() - started
            connected = [s for s in streams if s.connected_at and not s.error]
            await asyncio.sleep(1)
            rss_with = rss_mib(pid)

            sent_at = time.monotonic()
            await accept_all(client, _bodies(count, 8_000_000, _SSE_TEXT))
            while time.monotonic() < min(deadline, sent_at + 30):
                if all(s.enqueued_at or s.error for s in connected):
                    break
                await asyncio.sleep(0.1)
            # Two keepalive periods with nothing else to say: every stream should see one.
            told = {id(s): s.keepalives for s in connected}
            await asyncio.sleep(min(2 * keepalive + 0.5, max(0.0, deadline - time.monotonic())))
            kept_alive = sum(1 for s in connected if s.keepalives > told[id(s)])
            rss_held = rss_mib(pid)
            cpu_server, cpu_client = cpu_seconds(pid) - cpu_before, time.process_time() - cpu_self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    latencies, assigned = await _enqueue_latencies(database_url, connected)
    errors = sorted({s.error for s in streams if s.error and s.connected_at is None})
    return {
        "devices": count,
        "registered_per_second": count / registered_in,
        "connected": len(connected),
        "connect_seconds": connect_seconds,
        "rss_before_mib": rss_before,
        "rss_with_mib": rss_with,
        "rss_held_mib": rss_held,
        "kib_per_stream": (rss_with - rss_before) * 1024 / max(1, len(connected)),
        "assigned": assigned,  # streams whose phone was given a message
        "told": len(latencies),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "max_ms": latencies[-1] if latencies else math.nan,
        "kept_alive": kept_alive,
        "server_cpu_seconds": cpu_server,
        "client_cpu_seconds": cpu_client,
        "server_fd_limit": fd_limit(pid),
        "bench_fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "errors": errors[:3],
    }


async def _register(client: httpx.AsyncClient, pairing: str, count: int) -> list[_Stream]:
    """``count`` phones with one SIM each, registered with one pairing token (it is not used
    up; only failed registrations count against the address)."""
    sim = {"slotIndex": 0, "simNumber": 1, "phoneNumber": None, "carrierName": None, "iccid": None}
    streams: list[_Stream] = []
    names = iter(range(count))

    async def registrar() -> None:
        for n in names:
            answer = await client.post(
                "/api/mobile/v1/device",
                json={"name": f"bench-{n}", "pushToken": None, "simCards": [sim]},
                headers={"Authorization": f"Bearer {pairing}"},
            )
            answer.raise_for_status()
            body = answer.json()
            streams.append(_Stream(body["id"], body["token"]))

    await asyncio.gather(*(registrar() for _ in range(8)))
    return streams


async def _enqueue_latencies(database_url: str, streams: list[_Stream]) -> tuple[list[float], int]:
    """Per stream told, sorted, milliseconds from its phone's first message's acceptance (the
    database's clock, the same host's) to the stream's first ``MessageEnqueued``; and how many
    of the streams' phones were given a message."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(Message.device_id, func.min(Message.accepted_at))
                    .where(Message.text == _SSE_TEXT)
                    .group_by(Message.device_id)
                )
            ).all()
    finally:
        await db.dispose()
    accepted: dict[str | None, datetime | None] = {device: at for device, at in rows}
    latencies, assigned = [], 0
    for stream in streams:
        at = accepted.get(stream.device_id)
        assigned += at is not None
        if at is not None and stream.enqueued_at is not None:
            told = datetime.fromtimestamp(stream.enqueued_at, UTC)
            latencies.append((told - at).total_seconds() * 1000)
    return sorted(latencies), assigned
