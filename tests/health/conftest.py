from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import METRICS_TOKEN, keyed


@pytest.fixture
async def scraper(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus, scraping the in-process app with METRICS_TOKEN as its bearer token."""
    async with keyed(client, METRICS_TOKEN) as http:
        yield http
