"""The ``textbridge`` command."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer

from textbridge.settings import Role, Settings

app = typer.Typer(help="Textbridge, a self-hosted SMS gateway.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts (works on the database directly).")
keys_app = typer.Typer(help="Manage API keys (works on the database directly).")
simulate_app = typer.Typer(help="Drive the simulator channel.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(simulate_app, name="simulate")

T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option(help="Data folder [env TEXTBRIDGE_DATA_DIR]", show_default=False)
]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="Database URL [env TEXTBRIDGE_DATABASE_URL]", show_default=False)
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's options on top."""
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def _run(settings: Settings, work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    from textbridge.logs import configure

    configure(settings)
    return asyncio.run(work(settings))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="[env TEXTBRIDGE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="[env TEXTBRIDGE_PORT]")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    role: Annotated[
        Role | None, typer.Option(help="all: API and workers; api: the API only")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="Serve https with this certificate (PEM, its chain after it) "
            "[env TEXTBRIDGE_TLS_CERT]",
            show_default=False,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            help="The certificate's private key (PEM, unencrypted) [env TEXTBRIDGE_TLS_KEY]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP API and (unless --role api) the background workers."""
    import uvicorn

    from textbridge.api.app import create_app
    from textbridge.api.protocol import ConnectionLimits, protocol_with
    from textbridge.logs import configure

    settings = load_settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        role=role,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    tls = _tls_files(settings)
    configure(settings)
    if tls:
        where = f"[{settings.host}]" if ":" in settings.host else settings.host
        typer.echo(f"serving https://{where}:{settings.port} with {tls[0]}")
    limits = ConnectionLimits.of(settings)
    asked = "max_connections" in settings.model_fields_set  # the default is quietly capped
    if asked and limits.max_connections < settings.max_connections:
        typer.echo(
            f"warning: at most {limits.max_connections} connections, not "
            f"{settings.max_connections}: the open-file limit is too low (ulimit -n)",
            err=True,
        )
    app = create_app(settings)
    # What is loaded by now lives as long as the process: moved out of the collector's sight,
    # a full collection no longer walks it (about 150,000 objects, 80 ms a pass, every request
    # held; a 100,000-recipient bulk job sets off several).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        # X-Forwarded-For only from TRUSTED_PROXIES: uvicorn believes it from 127.0.0.1 by
        # default, so a guesser on this host (or behind a proxy here) could name any address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        loop="uvloop",
        # httptools, with deadlines for reading a request and a cap on connections.
        http=protocol_with(limits),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key to serve https with, checked before anything starts: a missing
    half or a bad file is a usage error (exit 2) rather than a traceback from uvicorn."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        _usage_error(
            "--tls-cert and --tls-key (TEXTBRIDGE_TLS_CERT, TEXTBRIDGE_TLS_KEY) go together: "
            "give both or neither"
        )
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            _usage_error(f"{option}: cannot read {path}: {exc.strerror or exc}")
    try:
        # An empty password: an encrypted key fails here instead of prompting on the terminal.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as exc:
        _usage_error(f"--tls-cert / --tls-key: not a certificate and its unencrypted key: {exc}")
    return cert, key


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def worker(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Run only the background workers (dispatch, scheduler, housekeeping)."""
    from textbridge.bootstrap import bootstrap, migrate
    from textbridge.channels.registry import SIMULATOR_WARNING
    from textbridge.runtime import Runtime

    async def work(settings: Settings) -> None:
        runtime = Runtime.build(settings)
        if settings.auto_migrate:
            await migrate(runtime.db)
        await bootstrap(runtime.db, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start()
        typer.echo("worker running; Ctrl-C to stop")
        if runtime.channels.simulating:
            typer.echo(f"WARNING: {SIMULATOR_WARNING}", err=True)
        await stop.wait()
        await runtime.stop()

    _run(load_settings(data_dir=data_dir, database_url=database_url, role=Role.WORKER), work)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date."""
    from textbridge.bootstrap import migrate as run_migrations
    from textbridge.runtime import Runtime

    async def work(settings: Settings) -> None:
        db = Runtime.build(settings).db
        await run_migrations(db)
        await db.dispose()

    _run(load_settings(data_dir=data_dir, database_url=database_url), work)
    typer.echo("database is up to date")


async def _with_database(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Migrated, bootstrapped database for an admin command; commits what ``work`` did."""
    from textbridge.bootstrap import bootstrap, migrate
    from textbridge.runtime import Runtime

    db = Runtime.build(settings.model_copy(update={"role": Role.API})).db
    try:
        if settings.auto_migrate:
            await migrate(db)
        await bootstrap(db, settings)
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()


@accounts_app.command("create")
def accounts_create(
    name: str,
    parent: Annotated[str | None, typer.Option(help="Name of the parent account")] = None,
    balance: Annotated[str, typer.Option(help="Starting balance (operator money)")] = "0",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account (a sub-account with --parent) and print its first API key."""
    from textbridge.accounts.service import accounts
    from textbridge.errors import TextbridgeError
    from textbridge.kit.money import to_micros

    try:
        amount = to_micros(Decimal(balance))
    except (ValueError, ArithmeticError):
        raise typer.BadParameter(f"not a number: {balance}", param_hint="--balance") from None
    if amount < 0:
        raise typer.BadParameter("must not be negative", param_hint="--balance")

    async def work(session: Any) -> dict[str, Any]:
        parent_id = (await accounts.get_by_name(session, parent)).id if parent else None
        account, raw_key = await accounts.create(session, name=name, parent_id=parent_id)
        if amount:
            await accounts.mint(session, account, amount)
        return {"id": account.id, "name": account.name, "api_key": raw_key}

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    try:
        result = _run(settings, lambda s: _with_database(s, work))
    except TextbridgeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result, indent=2))


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name")],
    name: Annotated[str, typer.Option(help="A label for the key")] = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key for an account and print it (only this once)."""
    from textbridge.accounts.service import accounts
    from textbridge.errors import TextbridgeError

    async def work(session: Any) -> str:
        owner = await accounts.get_by_name(session, account)
        _, raw_key = await accounts.create_key(session, account_id=owner.id, name=name)
        return raw_key

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    try:
        typer.echo(_run(settings, lambda s: _with_database(s, work)))
    except TextbridgeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


# Commands that talk to a running server -------------------------------------------------------

ApiUrl = Annotated[
    str | None,
    typer.Option("--url", help="Server URL [default: http://HOST:PORT from the settings]"),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key [env TEXTBRIDGE_API_KEY; default: the admin key in the data folder]",
    ),
]


def _client(url: str | None, api_key: str | None, data_dir: Path | None) -> httpx.Client:
    settings = load_settings(data_dir=data_dir)
    key = api_key or os.environ.get("TEXTBRIDGE_API_KEY")
    if not key:
        key_file = settings.data_dir / "admin-api-key"
        if not key_file.exists():
            typer.echo("error: no API key: pass --api-key or set TEXTBRIDGE_API_KEY", err=True)
            raise typer.Exit(2)
        key = key_file.read_text().strip()
    base = url or f"http://{settings.host}:{settings.port}"
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _print_answer(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    if response.is_error:
        raise typer.Exit(1)


@app.command()
def send(
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeat for several)")],
    text: Annotated[str, typer.Option(help="Message text")],
    sender: Annotated[str | None, typer.Option(help="Sender number or id")] = None,
    schedule_at: Annotated[str | None, typer.Option(help="ISO 8601 time to send at")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until every message is final")] = False,
    url: ApiUrl = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Send a message through a running server."""
    body: dict[str, Any] = {"to": to if len(to) > 1 else to[0], "text": text}
    if sender:
        body["sender"] = sender
    if schedule_at:
        body["schedule_at"] = schedule_at
    try:
        with _client(url, api_key, data_dir) as client:
            response = client.post("/v1/messages", json=body)
            if not wait or response.is_error:
                _print_answer(response)
                return
            ids = [message["id"] for message in response.json()["messages"]]
            _print_answer(_wait_final(client, ids))
    except httpx.TransportError as exc:
        typer.echo(f"error: cannot reach the server: {exc}", err=True)
        raise typer.Exit(2) from exc


def _wait_final(client: httpx.Client, ids: list[str], timeout: float = 120) -> httpx.Response:
    final = {"delivered", "failed", "expired", "cancelled"}
    deadline = time.monotonic() + timeout
    while True:
        answers = [client.get(f"/v1/messages/{message_id}") for message_id in ids]
        if all(a.is_success and a.json()["status"] in final for a in answers):
            return answers[-1] if len(answers) == 1 else _combined(answers)
        if time.monotonic() > deadline:
            return answers[-1]
        time.sleep(0.25)


def _combined(answers: list[httpx.Response]) -> httpx.Response:
    return httpx.Response(200, json=[answer.json() for answer in answers])


@simulate_app.command("inbound")
def simulate_inbound(
    from_: Annotated[str, typer.Option("--from", help="The phone that sends")],
    text: Annotated[str, typer.Option(help="Message text")],
    to: Annotated[str | None, typer.Option(help="Our number it is sent to")] = None,
    url: ApiUrl = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Make the simulator receive an SMS, as if a phone had sent it."""
    body = {"from": from_, "to": to, "text": text}
    try:
        with _client(url, api_key, data_dir) as client:
            _print_answer(client.post("/v1/simulator/inbound", json=body))
    except httpx.TransportError as exc:
        typer.echo(f"error: cannot reach the server: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def bench(
    backend: Annotated[
        list[str] | None, typer.Option(help="sqlite and/or postgresql [default: both]")
    ] = None,
    seconds: Annotated[int, typer.Option(help="Length of each wrk phase")] = 10,
    e2e_messages: Annotated[int, typer.Option(help="Messages in the end-to-end run")] = 20_000,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these phases: accept, e2e, webhooks, devices, sse, bulk_interference"
        ),
    ] = None,
    device_messages: Annotated[int, typer.Option(help="Messages through the agents")] = 5_000,
    sse_devices: Annotated[int, typer.Option(help="Event streams held at once")] = 1_000,
) -> None:
    """Measure acceptance, end-to-end, webhook and device throughput (docs/benchmarks.md)."""
    from textbridge import bench as benchmark

    unknown = set(backend or []) - {"sqlite", "postgresql"}
    if unknown:
        raise typer.BadParameter(f"unknown backend {sorted(unknown)}", param_hint="--backend")
    strange = set(only or []) - set(benchmark.PHASES)
    if strange:
        raise typer.BadParameter(f"unknown phase {sorted(strange)}", param_hint="--only")
    typer.echo(
        benchmark.run(
            backend or ["sqlite", "postgresql"],
            seconds=seconds,
            e2e_messages=e2e_messages,
            only=only,
            device_messages=device_messages,
            sse_devices=sse_devices,
        )
    )


class AgentBackend(StrEnum):
    SIMULATED = "simulated"
    MODEM = "modem"
    TERMUX = "termux"


class ModemMode(StrEnum):
    PDU = "pdu"
    TEXT = "text"


@app.command()
def agent(
    server: Annotated[str, typer.Option(help="The server's URL, e.g. https://192.168.1.10:8443")],
    token: Annotated[
        str,
        typer.Option(
            help="A pairing token (POST /v1/devices/pairing), for the first run",
            envvar="TEXTBRIDGE_AGENT_TOKEN",
        ),
    ],
    backend: Annotated[AgentBackend, typer.Option(help="What sends the SMS")] = (
        AgentBackend.SIMULATED
    ),
    name: Annotated[str, typer.Option(help="The device's name")] = "textbridge-agent",
    state: Annotated[
        Path, typer.Option(help="Where the device's id and token are kept between runs")
    ] = Path(".textbridge-agent.json"),
    sims: Annotated[int, typer.Option(min=1, max=8, help="SIM cards (simulated, termux)")] = 2,
    send_delay_ms: Annotated[int, typer.Option(min=0, help="Per SMS (simulated)")] = 50,
    failure_rate: Annotated[float, typer.Option(min=0, max=1, help="(simulated)")] = 0.0,
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="Pull this often anyway")] = 60.0,
    ca_cert: Annotated[
        Path | None, typer.Option(help="Trust this CA (a private one) for https")
    ] = None,
    journal: Annotated[
        Path | None, typer.Option(help="Append a JSON line per SMS sent and per report")
    ] = None,
    device: Annotated[str, typer.Option(help="The modem's serial port (modem)")] = "/dev/ttyUSB0",
    baud: Annotated[int, typer.Option(help="The serial port's speed (modem)")] = 115200,
    modem_mode: Annotated[ModemMode, typer.Option(help="PDU or text mode (modem)")] = (
        ModemMode.PDU
    ),
    modem_pin: Annotated[
        str | None,
        typer.Option(help="The SIM's PIN, if locked (modem)", envvar="TEXTBRIDGE_MODEM_PIN"),
    ] = None,
    inbox_seconds: Annotated[
        float, typer.Option(min=1, help="Read the inbox this often (termux)")
    ] = 10.0,
) -> None:
    """Be a phone: register with the server, then send what it gives this device and post
    what it receives."""
    from textbridge.agent import Agent, Backend, SimulatedBackend
    from textbridge.agent.modem import ModemBackend
    from textbridge.agent.termux import TermuxBackend
    from textbridge.logs import configure

    configure(load_settings())
    sender: Backend
    if backend is AgentBackend.MODEM:
        sender = ModemBackend(device, baudrate=baud, mode=modem_mode.value, pin=modem_pin)
    elif backend is AgentBackend.TERMUX:
        seen = state.with_name(state.name + ".inbox")
        sender = TermuxBackend(sims=sims, seen=seen, inbox_seconds=inbox_seconds)
    else:
        sender = SimulatedBackend(sims=sims, delay=send_delay_ms / 1000, failure_rate=failure_rate)
    phone = Agent(
        server,
        token,
        sender,
        name=name,
        state=state,
        poll=poll_seconds,
        verify=ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else True,
        journal=journal,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(phone.run())


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
