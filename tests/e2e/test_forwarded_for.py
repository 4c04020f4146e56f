"""The client's address in a real server: uvicorn rewrites it from X-Forwarded-For, so only a
configured proxy (TRUSTED_PROXIES) may name another, and a guesser on loopback rotating the
header still gets one address's failed attempts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.e2e.server import ServerProcess
from textbridge.db import Database
from textbridge.settings import Settings

pytestmark = pytest.mark.slow

MOBILE = "/api/mobile/v1"


def guesses(server: ServerProcess, count: int) -> list[int]:
    """Wrong codes, each claiming to be forwarded for another address."""
    with httpx.Client(base_url=server.url + MOBILE, timeout=30) as phone:
        return [
            phone.post(
                "/device",
                json={"name": "guess"},
                headers={"Authorization": f"Code {n:015d}", "X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(count)
        ]


def external_ip(server: ServerProcess) -> str:
    with httpx.Client(base_url=server.url + MOBILE, timeout=30) as phone:
        seen = phone.get("/device", headers={"X-Forwarded-For": "203.0.113.99"})
    address: str = seen.json()["externalIp"]
    return address


def test_a_rotated_forwarded_for_from_loopback_is_still_one_address(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, database_url=database_url, device_auth_limit="5/minute"
    ).start()
    try:
        assert guesses(server, 8) == [401] * 5 + [429] * 3
        assert external_ip(server) == "127.0.0.1"
    finally:
        server.stop()


def test_a_configured_proxy_names_the_client_and_codes_are_bounded_across_clients(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(),
        data_dir=tmp_path,
        database_url=database_url,
        trusted_proxies="127.0.0.1",
        device_auth_limit="5/minute",
        device_code_failure_limit="6/minute",
    ).start()
    try:
        assert external_ip(server) == "203.0.113.99"
        # Every guess from another client: the per-address limit never bites, the global does.
        assert guesses(server, 8) == [401] * 6 + [429] * 2
    finally:
        server.stop()


def test_trusted_proxies_are_addresses_or_networks() -> None:
    listed = Settings(trusted_proxies=" 127.0.0.1, 10.0.0.0/8 ,::1")
    assert listed.trusted_proxies == "127.0.0.1,10.0.0.0/8,::1"
    assert Settings(trusted_proxies="*").trusted_proxies == "*"
    assert Settings().trusted_proxies == ""
    # uvicorn would take a host name as a literal that no peer address ever matches.
    with pytest.raises(ValidationError, match=r"proxy\.internal"):
        Settings(trusted_proxies="127.0.0.1,proxy.internal")
