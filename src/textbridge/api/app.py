"""The application factory and its lifespan: build the runtime, migrate, bootstrap, start the
workers; stop them on shutdown."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from textbridge import __version__, compat
from textbridge.accounts.endpoints import router as accounts_router
from textbridge.api import errors
from textbridge.api.guard import RequestGuard
from textbridge.billing.endpoints import router as billing_router
from textbridge.bootstrap import bootstrap, migrate
from textbridge.channels.registry import SIMULATOR_WARNING
from textbridge.contacts.endpoints import router as contacts_router
from textbridge.devices import mobile
from textbridge.devices.endpoints import router as devices_router
from textbridge.devices.mobile import router as mobile_router
from textbridge.events.endpoints import router as events_router
from textbridge.health.endpoints import router as health_router
from textbridge.inbox.endpoints import router as inbox_router
from textbridge.messages.endpoints import bulk_router
from textbridge.messages.endpoints import router as messages_router
from textbridge.runtime import Runtime
from textbridge.settings import Settings
from textbridge.simulator.endpoints import router as simulator_router
from textbridge.verify.endpoints import router as verify_router
from textbridge.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        if settings.auto_migrate:
            await migrate(runtime.db)
        result = await bootstrap(runtime.db, settings)
        if result.generated_admin_key:
            announce_admin_key(result.generated_admin_key, settings)
        app.state.runtime = runtime
        await runtime.start()
        log.info(
            "textbridge started",
            role=settings.role.value,
            database=runtime.db.engine.url.render_as_string(hide_password=True),
            channels=[channel.name for channel in runtime.channels],
        )
        if runtime.channels.simulating:
            log.warning(SIMULATOR_WARNING)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Textbridge",
        version=__version__,
        summary="Self-hosted SMS gateway",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks look up the providers on every request (~8% of a small
        # request here); Textbridge exports its own Prometheus metrics instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Our own body limit rather than FastAPI's ``max_body_size``, whose 413 is plain text.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_import_bytes,
    )
    app.add_middleware(errors.HangUps)  # added last: the outermost
    app.state.error_renderers = [(mobile.PREFIX, mobile.render_error)]
    errors.install(app)
    for router in (
        messages_router,
        bulk_router,
        verify_router,
        contacts_router,
        inbox_router,
        events_router,
        webhooks_router,
        devices_router,
        mobile_router,
        accounts_router,
        billing_router,
        simulator_router,
        health_router,
    ):
        app.include_router(router)
    # After the native routes: routes are matched in order. Mounted first, the dialects' ~45
    # routes were tried before POST /v1/messages on every request: 1,332-1,408 req/s against
    # 1,868-2,170 with this order (wrk, SQLite, API role, docs/benchmarks.md).
    compat.mount(app, settings)
    return app


def announce_admin_key(key: str, settings: Settings) -> None:
    """The one time the generated admin key is shown (it is also in the data folder, mode 600)."""
    path = settings.data_dir / "admin-api-key"
    sys.stdout.write(f"\nAdmin API key (shown once; also written to {path}):\n\n    {key}\n\n")
    sys.stdout.flush()
