"""``/health`` for load balancers and people, ``/metrics`` for Prometheus."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from pydantic import BaseModel, Field

from textbridge import __version__
from textbridge.api.deps import RuntimeDep, SettingsDep
from textbridge.api.routing import make_router
from textbridge.channels.registry import SIMULATOR_WARNING
from textbridge.errors import Unauthorized
from textbridge.messages.service import messages

router = make_router(tags=["health"])

QUEUE_DEPTH = Gauge("textbridge_queue_depth", "Messages queued or being dispatched")
QUEUE_OLDEST = Gauge("textbridge_queue_oldest_seconds", "Age of the oldest due queued message")
MESSAGES_BY_STATUS = Gauge("textbridge_messages", "Messages stored, by status", ["status"])


class Health(BaseModel):
    status: str
    version: str
    database: bool
    role: str
    channels: dict[str, bool]
    simulator: bool = Field(
        description="The simulator is one of the channels: what has no phone or carrier to go "
        "through is not sent to anyone, yet ends delivered"
    )
    warnings: list[str] = Field(description="What an operator must know, e.g. the simulator")
    queue_depth: int | None
    oldest_queued_seconds: float | None


@router.get("/health", response_model=Health)
async def health(runtime: RuntimeDep, response: Response) -> Health:
    """Can the database be written, how deep is the queue, how old is its oldest message."""
    depth: int | None = None
    oldest: float | None = None
    database = await runtime.db.writable()
    if database:
        async with runtime.db.transaction() as session:
            figures = await messages.queue_figures(session)
        depth, oldest = figures.depth, figures.oldest_age_seconds
    running = runtime.worker is not None
    channels = {c.name: (c.healthy() if running else True) for c in runtime.channels}
    ok = database and all(channels.values())
    response.status_code = 200 if ok else 503
    return Health(
        status="ok" if ok else "degraded",
        version=__version__,
        database=database,
        role=runtime.settings.role.value,
        channels=channels,
        simulator=runtime.channels.simulating,
        warnings=[SIMULATOR_WARNING] if runtime.channels.simulating else [],
        queue_depth=depth,
        oldest_queued_seconds=oldest,
    )


def _scraper(request: Request, settings: SettingsDep) -> None:
    """Only a scraper holding ``METRICS_TOKEN``: the figures count every account's messages.
    Without a token set, ``/metrics`` answers no one."""
    token = settings.metrics_token
    if not token:
        raise Unauthorized(
            "/metrics is off: set TEXTBRIDGE_METRICS_TOKEN and scrape with it as a bearer token"
        )
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # compare_digest: how long the comparison takes says nothing of how much of it matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        raise Unauthorized("/metrics needs TEXTBRIDGE_METRICS_TOKEN as a bearer token")


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(_scraper)])
async def metrics(runtime: RuntimeDep) -> Response:
    async with runtime.db.transaction() as session:
        figures = await messages.queue_figures(session, by_status=True)
    QUEUE_DEPTH.set(figures.depth)
    QUEUE_OLDEST.set(figures.oldest_age_seconds or 0)
    for status, count in figures.by_status.items():
        MESSAGES_BY_STATUS.labels(status).set(count)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
