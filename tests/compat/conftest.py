"""A real server for the dialects' published clients, and the redirect that points them at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.e2e.server import ServerProcess
from textbridge.db import Database


@pytest.fixture
def live_server(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[Callable[..., ServerProcess]]:
    """Starts a real server with the given settings, on the emptied test database."""
    started: list[ServerProcess] = []

    def start(**settings: Any) -> ServerProcess:
        server = ServerProcess(
            port=free_port(), data_dir=tmp_path, database_url=database_url, **settings
        )
        started.append(server.start())
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def redirect(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """``redirect("https://textflow.me", server.url)``: requests made by any client through
    ``requests`` go to our server instead, where ``requests`` hands them to the network. The
    client's own code is not touched."""
    routes: dict[str, str] = {}
    send = HTTPAdapter.send

    def redirected(
        adapter: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        assert request.url is not None
        for origin, target in routes.items():
            request.url = request.url.replace(origin, target)
        return send(adapter, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", redirected)
    return routes.__setitem__
