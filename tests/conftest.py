"""Fixtures that run the suite against a real SQLite file and a real PostgreSQL database.

Every test that takes ``db`` (directly or through ``app`` / ``client``) runs twice, once per
backend. Each backend's schema is migrated once per session; each test starts from empty
tables (plus the bootstrap rows: admin account and prices).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from tests.eventually import eventually
from textbridge.api.app import create_app
from textbridge.bootstrap import migrate
from textbridge.db import Base, Database
from textbridge.settings import Settings

ADMIN_KEY = "tb_test_admin_key_0123456789abcdef"
METRICS_TOKEN = "test-metrics-token"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEXTBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

FINAL = {"delivered", "failed", "expired", "cancelled", "received"}


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("textbridge")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[str]:
    """A migrated database of each kind, for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'suite.db'}"
        db = Database(url)
        await migrate(db)
        await db.dispose()
        yield url
        return
    name = f"textbridge_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _asyncpg_url(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    db = Database(url)
    await migrate(db)
    await db.dispose()
    yield url
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def empty_tables(db: Database) -> None:
    """DELETE, children first, on both databases: a test leaves a few rows, and PostgreSQL's
    TRUNCATE of 25 tables took 0.5 s however empty they were (DELETE: 4 ms), half a second
    on every PostgreSQL test."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with db.transaction() as session:
        # accounts.parent_id is ON DELETE RESTRICT, checked row by row.
        await session.execute(text("UPDATE accounts SET parent_id = NULL"))
        for table in tables:
            await session.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_api_key": ADMIN_KEY,
        "secret_key": "test-secret-key-not-for-production",
        "metrics_token": METRICS_TOKEN,
        "auto_migrate": False,
        "simulator_delivery_delay_ms": 30,
        "dispatch_poll_seconds": 0.1,
        "maintenance_interval_seconds": 0.1,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "lease_seconds": 5,
        "webhook_allow_private": True,  # the receivers are on 127.0.0.1
        "webhook_poll_seconds": 0.05,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_max_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    await empty_tables(database)
    yield database
    await database.dispose()


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


BASE_URL = "http://textbridge.test"


def keyed(client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    """Another client on the same in-process app, calling with ``key``."""
    return httpx.AsyncClient(
        transport=client._transport, base_url=BASE_URL, headers={"Authorization": f"Bearer {key}"}
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's client, in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as http:
        yield http


@asynccontextmanager
async def client_of(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's client on another app, built with these settings changed (an API-only
    process, no simulator...), on the same database."""
    application = create_app(settings.model_copy(update=changes))
    async with (
        LifespanManager(application, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as http,
    ):
        yield http


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a fresh sub-account of the admin with a balance of 100."""
    answer = await client.post("/v1/accounts", json={"name": "tenant", "balance": 100})
    assert answer.status_code == 201, answer.text
    async with keyed(client, answer.json()["api_key"]) as http:
        yield http


async def wait_for(
    client: httpx.AsyncClient,
    message_id: str,
    statuses: set[str] | None = None,
    *,
    within: float = 10,
) -> dict[str, Any]:
    """Poll a message until it reaches one of ``statuses`` (any final status by default)."""
    wanted = statuses or FINAL

    async def arrived() -> dict[str, Any]:
        answer = await client.get(f"/v1/messages/{message_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["status"] in wanted, f"message stuck in {body['status']}: {body}"
        return body

    return await eventually(arrived, within=within)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Keep the run grouped by backend so each database is set up once.
    items.sort(key=lambda item: "postgresql" in item.nodeid)


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    import socket

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port

    return pick
