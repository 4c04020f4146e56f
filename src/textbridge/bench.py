"""``make bench`` / ``python -m textbridge.bench``: throughput and latency on SQLite and PostgreSQL.

For each database it starts real ``textbridge serve`` processes on 127.0.0.1 and measures:

1. acceptance, 1 recipient per request: ``POST /v1/messages`` driven by ``wrk`` (API role only,
   so the figure is the API's own), requests per second and latency percentiles;
2. acceptance, 100 recipients per request: the same, in recipients per second;
3. end to end: a fixed number of messages accepted in 100-recipient requests and dispatched
   through the simulator (no delivery delay) by one ``serve`` process running API and workers;
   messages per second from the first acceptance to the last ``delivered``, and p50/p99 of
   each message's own acceptance-to-delivered time, read from the database's timestamps;
4. webhooks: 20,000 events (a CSV import that changes 20,000 contacts' tags) delivered to a
   receiver in another process, deliveries per second;
5. devices: messages through the device protocol, accepted in 100-recipient requests and
   delivered by two ``textbridge agent`` processes with two simulated SIMs each (no send
   delay); messages per second from the first acceptance to the last ``delivered``, p50/p95
   of each message's acceptance-to-delivered time;
6. event streams: 1,000 phones registered, each holding ``GET /api/mobile/v1/events`` open to
   one ``serve`` process; the process's resident memory without and with the streams, the
   time from a message's acceptance to its phone's ``MessageEnqueued`` (p50/p95), and that
   every stream keeps getting its keepalive (``DEVICE_KEEPALIVE_SECONDS=2``);
7. a bulk job beside other traffic: one ``serve`` process accepts a 100,000-recipient bulk job
   while single sends go on at 100 a second (half from the job's own account) and ``/health``
   is asked every 50 ms; their p50/p99/max while the job is accepted, against the same in the
   3 s before it (``bulk_interference``).

``--only`` runs some of the phases: ``accept`` (1, 2 and the bulk, import, campaign and verify
figures, on one API-only process), ``e2e``, ``webhooks``, ``devices``, ``sse``,
``bulk_interference``. The bench lifts
its open-file soft limit to the hard limit before it starts anything, so the ``serve``
processes inherit it (the event-stream phase holds one socket per stream on each side).

Every distinct number is sent once per run, so the phone-number cache never flatters a figure.
Traffic goes only to 127.0.0.1; every phase is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, insert, select

from textbridge import bench_devices
from textbridge.db import Database
from textbridge.kit.ids import new_id
from textbridge.models import Account, Message, Verification, WebhookAttempt, WebhookDelivery

ADMIN_KEY = "tb_bench_admin_key_0123456789abcdef"
PHASES = ("accept", "e2e", "webhooks", "devices", "sse", "bulk_interference")
POSTGRES_ADMIN_URL = os.environ.get(
    "TEXTBRIDGE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Numbers 415-200-0000 onwards: valid, and outside the simulator's failure ranges.
_LUA = """
counter = %(offset)d
thread_id = 0
setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
init = function(args)
  counter = counter + thread_id * 5000000
end
request = function()
  local numbers = {}
  for i = 1, %(recipients)d do
    counter = counter + 1
    numbers[i] = '"+1415' .. string.format("%%07d", 2000000 + counter %% 7000000) .. '"'
  end
  local body = '{"to":[' .. table.concat(numbers, ",") .. '],"text":"Benchmark message"}'
  return wrk.format("POST", "/v1/messages", {
    ["Authorization"] = "Bearer %(key)s",
    ["Content-Type"] = "application/json",
  }, body)
end
"""


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, data_dir: Path, database_url: str, **settings: Any) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "TEXTBRIDGE_PORT": str(self.port),
            "TEXTBRIDGE_DATA_DIR": str(data_dir),
            "TEXTBRIDGE_DATABASE_URL": database_url,
            "TEXTBRIDGE_ADMIN_API_KEY": ADMIN_KEY,
            "TEXTBRIDGE_ADMIN_INITIAL_BALANCE": "100000000000",
            "TEXTBRIDGE_LOG_LEVEL": "warning",
        }
        env.update({f"TEXTBRIDGE_{k.upper()}": str(v) for k, v in settings.items()})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "textbridge", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_wrk(
    url: str,
    *,
    recipients: int,
    seconds: int,
    connections: int,
    offset: int,
    script: str | None = None,
) -> WrkResult:
    lua = script or _LUA % {"recipients": recipients, "key": ADMIN_KEY, "offset": offset}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script_file:
        script_file.write(lua)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script_file.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script_file.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in match.groups())
    return WrkResult(rps, _percentile(output, "50%"), _percentile(output, "99%"), errors, requests)


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


_VERIFY_LUA = """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
n = 0
request = function()
  n = n + 1
  local body = '{"verification_id":"' .. ids[(n %% #ids) + 1] .. '","code":"000000"}'
  return wrk.format("POST", "/v1/verifications/check", {
    ["Authorization"] = "Bearer %(key)s",
    ["Content-Type"] = "application/json",
  }, body)
end
"""


def verify_checks(url: str, database_url: str, *, seconds: int) -> WrkResult:
    """Checks per second of ``/v1/verifications/check`` on 20,000 pending verifications, each
    check a wrong code that is counted (the atomic attempt update, then the HMAC compare)."""
    ids = asyncio.run(_pending_verifications(database_url, 20_000))
    with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as listing:
        listing.write("\n".join(ids))
    try:
        return run_wrk(
            url,
            recipients=0,
            seconds=seconds,
            connections=32,
            offset=0,
            script=_VERIFY_LUA % {"ids": listing.name, "key": ADMIN_KEY},
        )
    finally:
        os.unlink(listing.name)


async def _pending_verifications(database_url: str, count: int) -> list[str]:
    """Verification rows written directly (sending 20,000 codes would measure sending)."""
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            admin = (
                await session.execute(select(Account.id).where(Account.is_admin.is_(True)))
            ).scalar_one()
            rows = [
                {
                    "id": new_id(),
                    "account_id": admin,
                    "phone": f"+1415{5000000 + i:07d}",
                    "service": "",
                    "code_length": 6,
                    "nonce": secrets.token_hex(16),
                    "code_hmac": secrets.token_hex(32),
                    "status": "pending",
                    "attempts": 0,
                    "sends": 1,
                    "last_sent_at": now,
                    "expires_at": now + timedelta(hours=1),
                    "created_at": now,
                }
                for i in range(count)
            ]
            await session.execute(insert(Verification), rows)
    finally:
        await db.dispose()
    return [str(row["id"]) for row in rows]


def bulk_job(url: str, *, recipients: int) -> float:
    """Seconds to accept one TextFlow bulk-sms job (every number parsed, priced, stored)."""
    numbers = [f"+1415{4000000 + i:07d}" for i in range(recipients)]
    started = time.perf_counter()
    answer = httpx.post(
        f"{url}/textflow/api/bulk-sms",
        json={"phone_numbers": numbers, "text": "Bulk benchmark"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


@dataclass
class Interference:
    """Each single send's and each ``/health`` poll's time in ms, by kind (``send``,
    ``health``): in the seconds before a bulk job (``quiet``) and while it was being accepted
    (``during``)."""

    job_seconds: float
    job_status: int
    quiet: dict[str, list[float]]
    during: dict[str, list[float]]
    errors: int

    def figures(self) -> dict[str, float]:
        figures = {"job_seconds": self.job_seconds, "errors": float(self.errors)}
        for window, found in (("quiet", self.quiet), ("during", self.during)):
            for kind in ("send", "health"):
                times = sorted(found[kind])
                figures[f"{window}_{kind}s"] = len(times)
                figures[f"{window}_{kind}_p50_ms"] = bench_devices.percentile(times, 0.5)
                figures[f"{window}_{kind}_p99_ms"] = bench_devices.percentile(times, 0.99)
                figures[f"{window}_{kind}_max_ms"] = max(times, default=math.nan)
        return figures


async def bulk_interference(
    url: str,
    *,
    admin_key: str,
    recipients: int,
    senders: int = 4,
    rate: float = 100,
    quiet_seconds: float = 3.0,
    first_number: int = 0,
) -> Interference:
    """One native bulk job of ``recipients`` numbers, posted by the admin account, while
    ``senders`` clients send one-recipient messages, ``rate`` a second together (half of them
    from the job's own account, half from another; a late answer delays the next send, never
    more than one is waiting) and one more asks ``/health`` every 50 ms; the same for
    ``quiet_seconds`` before the job, for comparison. The job is posted from a thread, so
    building and sending its body never delays the other clients."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    numbers = [f"+1415{4000000 + first_number + i:07d}" for i in range(recipients)]
    body = json.dumps({"to": numbers, "text": "Interference"}).encode()
    timings: list[tuple[str, float, float]] = []  # (kind, started, ms)
    errors = 0
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as admin:
        created = await admin.post(
            "/v1/accounts", json={"name": f"neighbour-{new_id()}", "balance": 10_000}
        )
        created.raise_for_status()
        other = {"Authorization": f"Bearer {created.json()['api_key']}"}
        async with httpx.AsyncClient(base_url=url, headers=other, timeout=120) as neighbour:
            sent = 0

            async def sender(client: httpx.AsyncClient) -> None:
                nonlocal sent, errors
                due = time.monotonic()
                while not stop.is_set():
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    due = max(due, time.monotonic()) + senders / rate
                    sent += 1
                    number = f"+1415{7000000 + first_number + sent:07d}"
                    started = time.monotonic()
                    answer = await client.post(
                        "/v1/messages", json={"to": number, "text": "Meanwhile"}
                    )
                    timings.append(("send", started, (time.monotonic() - started) * 1000))
                    errors += answer.status_code != 202

            async def health() -> None:
                nonlocal errors
                while not stop.is_set():
                    started = time.monotonic()
                    answer = await admin.get("/health")
                    timings.append(("health", started, (time.monotonic() - started) * 1000))
                    errors += answer.status_code != 200
                    await asyncio.sleep(0.05)

            def post_job() -> httpx.Response:
                return httpx.post(
                    f"{url}/v1/bulk-jobs",
                    content=body,
                    headers={**headers, "Content-Type": "application/json"},
                    timeout=600,
                )

            clients = [admin if n % 2 else neighbour for n in range(senders)]
            tasks = [asyncio.create_task(sender(c)) for c in clients]
            tasks.append(asyncio.create_task(health()))
            await asyncio.sleep(1.0)  # connections open, the server warm
            quiet_started = time.monotonic()
            await asyncio.sleep(quiet_seconds)
            job_started = time.monotonic()
            job = await asyncio.to_thread(post_job)
            job_ended = time.monotonic()
            stop.set()
            await asyncio.gather(*tasks)

    def between(start: float, end: float) -> dict[str, list[float]]:
        """Every request open at some moment from ``start`` to ``end``."""
        found: dict[str, list[float]] = {"send": [], "health": []}
        for kind, started, ms in timings:
            if started < end and started + ms / 1000 >= start:
                found[kind].append(ms)
        return found

    return Interference(
        job_seconds=job_ended - job_started,
        job_status=job.status_code,
        quiet=between(quiet_started, job_started),
        during=between(job_started, job_ended),
        errors=errors,
    )


def contacts_csv(rows: int) -> bytes:
    lines = ["phone,first_name,last_name,tag,city"]
    lines += [
        f"+1415{5000000 + i:07d},Name{i},Family{i % 97},t{i % 5},City{i % 13}" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def contacts_import(url: str, *, rows: int) -> tuple[float, str]:
    """Seconds to import a CSV of ``rows`` new contacts into a new group; and the group."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    group = httpx.post(f"{url}/v1/groups", json={"name": "bench"}, headers=headers).json()["id"]
    body = contacts_csv(rows)
    started = time.perf_counter()
    answer = httpx.post(
        f"{url}/v1/contacts/import",
        content=body,
        params={"group_id": group},
        headers={**headers, "Content-Type": "text/csv"},
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    if answer.json()["created"] != rows:
        raise RuntimeError(f"import created {answer.json()['created']} of {rows}")
    return elapsed, str(group)


def group_campaign(url: str, *, group: str) -> float:
    """Seconds to accept a bulk job to a whole group, its text filled in per contact."""
    started = time.perf_counter()
    answer = httpx.post(
        f"{url}/v1/bulk-jobs",
        json={"groups": [group], "text": "Hi {first_name} {last_name}, news from {city}!"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


async def end_to_end(url: str, database_url: str, *, total: int) -> dict[str, float]:
    """Accept ``total`` messages in 100-recipient requests, wait for all to be delivered."""
    per_request = 100
    bodies = []
    for r in range(total // per_request):
        to = [f"+1415{3000000 + r * per_request + i:07d}" for i in range(per_request)]
        bodies.append({"to": to, "text": "End to end"})
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        started = time.monotonic()
        await bench_devices.accept_all(client, bodies)
        db = Database(database_url)
        try:
            deadline = started + 600
            while time.monotonic() < deadline:
                health = (await client.get("/health")).json()
                if health["queue_depth"] == 0 and await _all_final(db, total):
                    break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("end-to-end run did not finish in 600 s")
            async with db.transaction() as session:
                rows = (
                    await session.execute(
                        select(Message.accepted_at, Message.delivered_at, Message.status).where(
                            Message.text == "End to end"
                        )
                    )
                ).all()
        finally:
            await db.dispose()
    delivered = [r for r in rows if r.status == "delivered"]
    first = min(r.accepted_at for r in rows)
    last = max(r.delivered_at for r in delivered)
    latencies = sorted((r.delivered_at - r.accepted_at).total_seconds() * 1000 for r in delivered)
    return {
        "messages": len(rows),
        "delivered": len(delivered),
        "per_second": len(delivered) / (last - first).total_seconds(),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


async def receiver_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The fast webhook receiver of the webhook phase: reads the request, answers 204."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def webhook_deliveries(url: str, database_url: str, *, events: int) -> dict[str, float]:
    """``events`` contact.tag_changed events (a CSV import that retags that many contacts)
    delivered to a receiver in another process (uvicorn); deliveries per second from the
    first attempt to the last delivery, read from the database."""
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log"]
    receiver = subprocess.Popen(
        [*uvicorn, "--port", str(port), "textbridge.bench:receiver_app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        hook = {"url": f"http://127.0.0.1:{port}/hook", "events": ["contact.tag_changed"]}
        httpx.post(f"{url}/v1/webhooks", json=hook, headers=headers).raise_for_status()
        for tag in ("before", "after"):  # the second import changes every tag: the events
            rows = ["phone,tag"] + [f"+1415{6000000 + i:07d},{tag}" for i in range(events)]
            httpx.post(
                f"{url}/v1/contacts/import",
                content="\n".join(rows).encode(),
                headers={**headers, "Content-Type": "text/csv"},
                timeout=600,
            ).raise_for_status()
        return asyncio.run(_deliveries_done(database_url, events))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


async def _deliveries_done(database_url: str, events: int) -> dict[str, float]:
    db = Database(database_url)

    async def progress(session: Any) -> tuple[int, int, datetime | None, datetime | None]:
        delivered, last = (
            await session.execute(
                select(func.count(), func.max(WebhookDelivery.delivered_at)).where(
                    WebhookDelivery.status == "delivered"
                )
            )
        ).one()
        tries, first = (
            await session.execute(select(func.count(), func.min(WebhookAttempt.at)))
        ).one()
        return delivered, tries, first, last

    try:
        deadline = time.monotonic() + 600
        while (done := await db.run(progress))[0] < events:
            if time.monotonic() > deadline:
                raise RuntimeError("the webhook phase did not finish in 600 s")
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()
    delivered, tries, first, last = done
    assert first is not None
    assert last is not None
    return {
        "deliveries": delivered,
        "attempts": tries,
        "per_second": delivered / (last - first).total_seconds(),
    }


async def _all_final(db: Database, total: int) -> bool:
    async with db.transaction() as session:
        rows = await session.execute(
            select(Message.status).where(
                Message.text == "End to end",
                Message.status.in_(["delivered", "failed", "expired"]),
            )
        )
        return len(rows.all()) >= total


async def create_postgres(name: str) -> str:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://", 1)
    return base.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def bench_backend(
    backend: str,
    *,
    seconds: int,
    e2e_total: int,
    phases: tuple[str, ...] = PHASES,
    device_messages: int = 5_000,
    sse_devices: int = 1_000,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # Acceptance first, on an API-only server; then end to end on a fresh database, so the
    # dispatcher does not start with the acceptance phases' backlog.
    if "accept" in phases:
        with _serving(backend, "accept", role="api") as server:
            run_wrk(server.url, recipients=1, seconds=2, connections=16, offset=0)  # warm-up
            results["single"] = run_wrk(
                server.url, recipients=1, seconds=seconds, connections=32, offset=10_000
            )
            results["hundred"] = run_wrk(
                server.url, recipients=100, seconds=seconds, connections=8, offset=20_000_000
            )
            results["bulk"] = bulk_job(server.url, recipients=100_000)
            results["import"], group = contacts_import(server.url, rows=100_000)
            results["campaign"] = group_campaign(server.url, group=group)
            results["verify"] = verify_checks(server.url, server.database_url, seconds=seconds)
    if "e2e" in phases:
        with _serving(
            backend, "e2e", simulator_delivery_delay_ms=0, dispatch_batch_size=500
        ) as server:
            results["e2e"] = asyncio.run(
                end_to_end(server.url, server.database_url, total=e2e_total)
            )
    if "webhooks" in phases:
        with _serving(backend, "webhooks", webhook_allow_private=1) as server:
            results["webhooks"] = webhook_deliveries(server.url, server.database_url, events=20_000)
    # The device phases batch dispatch as the end-to-end phase does; other settings default.
    if "devices" in phases:
        with _serving(backend, "devices", dispatch_batch_size=500) as server:
            results["devices"] = bench_devices.device_protocol(
                server.url,
                server.database_url,
                server.data_dir,
                admin_key=ADMIN_KEY,
                pid=server.process.pid,
                agents=2,
                total=device_messages,
            )
    if "sse" in phases:
        with _serving(
            backend, "sse", dispatch_batch_size=500, device_keepalive_seconds=2
        ) as server:
            results["sse"] = bench_devices.sse_streams(
                server.url,
                server.database_url,
                admin_key=ADMIN_KEY,
                pid=server.process.pid,
                devices=sse_devices,
                keepalive=2,
            )
    if "bulk_interference" in phases:
        with _serving(backend, "interference") as server:
            seen = asyncio.run(
                bulk_interference(server.url, admin_key=ADMIN_KEY, recipients=100_000)
            )
            results["bulk_interference"] = seen.figures()
    return results


@contextlib.contextmanager
def _serving(backend: str, purpose: str, **settings: Any) -> Iterator[Server]:
    """A ``serve`` process on a fresh database of the kind, stopped afterwards."""
    with _database(backend, purpose) as (work, database_url):
        server = Server(work, database_url, **settings)
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def _database(backend: str, purpose: str) -> Iterator[tuple[Path, str]]:
    """A data folder and an empty database of the kind, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=f"textbridge-bench-{backend}-{purpose}-"))
    pg_name = f"textbridge_bench_{purpose}_{os.getpid()}"
    try:
        if backend == "sqlite":
            yield work, f"sqlite+aiosqlite:///{work / 'bench.db'}"
        else:
            yield work, asyncio.run(create_postgres(pg_name))
    finally:
        if backend == "postgresql":
            asyncio.run(drop_postgres(pg_name))
        shutil.rmtree(work, ignore_errors=True)


def _cells(r: dict[str, Any]) -> dict[str, str]:
    """The figures of the phases that ran, by column header."""
    cells = {}
    if "single" in r:
        single, hundred, verify = r["single"], r["hundred"], r["verify"]
        cells["1 recipient/request"] = (
            f"{single.requests_per_second:,.0f} req/s (p50 {single.p50_ms:.1f} ms, "
            f"p99 {single.p99_ms:.1f} ms; {single.errors} errors)"
        )
        cells["100 recipients/request"] = (
            f"{hundred.requests_per_second * 100:,.0f} recipients/s "
            f"({hundred.requests_per_second:,.0f} req/s, p50 {hundred.p50_ms:.1f} ms, "
            f"p99 {hundred.p99_ms:.1f} ms; {hundred.errors} errors)"
        )
        cells["100,000-recipient bulk job"] = f"accepted in {r['bulk']:.1f} s"
        cells["100,000-contact CSV import"] = f"{r['import']:.1f} s"
        cells["templated campaign to those 100,000"] = f"accepted in {r['campaign']:.1f} s"
        cells["verify checks"] = (
            f"{verify.requests_per_second:,.0f} checks/s (p50 {verify.p50_ms:.1f} ms, "
            f"p99 {verify.p99_ms:.1f} ms; {verify.errors} errors)"
        )
    if "e2e" in r:
        e2e = r["e2e"]
        cells["end to end (simulator)"] = (
            f"{e2e['per_second']:,.0f} msg/s ({e2e['delivered']:,}/{e2e['messages']:,} "
            f"delivered; p50 {e2e['p50_ms']:.0f} ms, p99 {e2e['p99_ms']:.0f} ms)"
        )
    if "webhooks" in r:
        hooks = r["webhooks"]
        cells["webhook deliveries"] = (
            f"{hooks['per_second']:,.0f}/s ({hooks['deliveries']:,} delivered in "
            f"{hooks['attempts']:,} requests)"
        )
    if "devices" in r:
        d = r["devices"]
        cells[f"device protocol ({d['agents']} agents, {d['sims']} SIMs)"] = (
            f"{d['per_second']:,.0f} msg/s ({d['delivered']:,}/{d['messages']:,} delivered "
            f"in {d['seconds']:.1f} s; p50 {d['p50_ms']:,.0f} ms, p95 {d['p95_ms']:,.0f} ms)"
        )
    if "sse" in r:
        e = r["sse"]
        errors = f"; failed: {', '.join(e['errors'])}" if e["errors"] else ""
        cells["event streams held by one process"] = (
            f"{e['connected']:,}/{e['devices']:,} open in {e['connect_seconds']:.1f} s{errors}; "
            f"RSS {e['rss_before_mib']:.0f} → {e['rss_with_mib']:.0f} MiB "
            f"({e['kib_per_stream']:.1f} KiB/stream); MessageEnqueued p50 {e['p50_ms']:,.0f} ms, "
            f"p95 {e['p95_ms']:,.0f} ms ({e['told']:,}/{e['assigned']:,} told); "
            f"keepalives on {e['kept_alive']:,}/{e['connected']:,}"
        )
    if "bulk_interference" in r:
        b = r["bulk_interference"]

        def window(name: str) -> str:
            parts = []
            for kind in ("send", "health"):
                at = f"{name}_{kind}"
                parts.append(
                    f"{kind} p50 {b[f'{at}_p50_ms']:,.0f}, p99 {b[f'{at}_p99_ms']:,.0f}, "
                    f"max {b[f'{at}_max_ms']:,.0f} ms ({b[f'{at}s']:,.0f})"
                )
            return "; ".join(parts)

        cells["beside a 100,000-recipient bulk job"] = (
            f"job accepted in {b['job_seconds']:.1f} s; during it: {window('during')}; "
            f"the 3 s before: {window('quiet')}; {b['errors']:.0f} errors"
        )
    return cells


def report(all_results: dict[str, dict[str, Any]]) -> str:
    """The Markdown table: a row per database, a column per figure measured."""
    rows = {backend: _cells(r) for backend, r in all_results.items()}
    headers = list(dict.fromkeys(h for cells in rows.values() for h in cells))
    lines = [
        "| database | " + " | ".join(headers) + " |",
        "|---" * (len(headers) + 1) + "|",
    ]
    for backend, cells in rows.items():
        lines.append(f"| {backend} | " + " | ".join(cells.get(h, "") for h in headers) + " |")
    notes = []
    for backend, r in all_results.items():
        if "devices" in r:
            d = r["devices"]
            notes.append(
                f"{backend} device protocol: CPU while the messages went through: server "
                f"{d['server_cpu_seconds']:.1f} s, agents {d['agents_cpu_seconds']:.1f} s "
                f"in {d['seconds']:.1f} s."
            )
        if "sse" in r:
            e = r["sse"]
            notes.append(
                f"{backend} event streams: {e['registered_per_second']:,.0f} registrations/s; "
                f"RSS {e['rss_held_mib']:.0f} MiB after the messages; CPU while held: server "
                f"{e['server_cpu_seconds']:.1f} s, bench {e['client_cpu_seconds']:.1f} s; "
                f"open-file limit: server {e['server_fd_limit']:,}, bench {e['bench_fd_limit']:,}."
            )
    return "\n".join([*lines, *([""] if notes else []), *notes])


def run(
    backends: list[str],
    *,
    seconds: int = 10,
    e2e_messages: int = 20_000,
    only: list[str] | None = None,
    device_messages: int = 5_000,
    sse_devices: int = 1_000,
) -> str:
    """Measure each backend; answers the Markdown table of docs/benchmarks.md."""
    phases = tuple(only or PHASES)
    if "accept" in phases and shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk (make bench installs it)")
    bench_devices.raise_fd_limit()  # before any server starts: they inherit it
    results = {}
    for backend in backends:
        print(f"benchmarking {backend}...", file=sys.stderr, flush=True)
        results[backend] = bench_backend(
            backend,
            seconds=seconds,
            e2e_total=e2e_messages,
            phases=phases,
            device_messages=device_messages,
            sse_devices=sse_devices,
        )
    return report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--seconds", type=int, default=10, help="per wrk phase")
    parser.add_argument("--e2e-messages", type=int, default=20_000)
    parser.add_argument(
        "--only", choices=PHASES, action="append", help="run this phase (repeatable)"
    )
    parser.add_argument("--device-messages", type=int, default=5_000, help="devices phase")
    parser.add_argument("--sse-devices", type=int, default=1_000, help="event streams held")
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    print(
        run(
            backends,
            seconds=args.seconds,
            e2e_messages=args.e2e_messages,
            only=args.only,
            device_messages=args.device_messages,
            sse_devices=args.sse_devices,
        )
    )


if __name__ == "__main__":
    main()
