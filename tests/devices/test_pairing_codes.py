"""One-time pairing codes: long enough that guessing one in its ten minutes is hopeless, and
guesses bounded per address, across addresses, and per account where the account is known."""

from __future__ import annotations

import asyncio
import base64
import math
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import BASE_URL, make_settings
from textbridge.settings import Settings

MOBILE = "/api/mobile/v1"
SHOWN = re.compile(r"\d{5}-\d{5}-\d{5}")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, tmp_path, device_auth_limit="3/minute", device_code_failure_limit="5/minute"
    )


@pytest.fixture
async def pairing(tenant: httpx.AsyncClient) -> dict[str, str]:
    answer = await tenant.post("/v1/devices/pairing")
    assert answer.status_code == 201, answer.text
    paired: dict[str, str] = answer.json()
    return paired


def phone_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A phone calling from this address."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"{BASE_URL}{MOBILE}")


async def register(app: FastAPI, address: str, authorization: str) -> int:
    async with phone_at(app, address) as phone:
        answer = await phone.post(
            "/device", json={"name": "Pixel"}, headers={"Authorization": authorization}
        )
    assert answer.status_code in (201, 401, 429), answer.text
    return answer.status_code


async def test_a_code_is_15_digits_shown_in_groups_and_typed_any_way(
    app: FastAPI, tenant: httpx.AsyncClient
) -> None:
    codes = [(await tenant.post("/v1/devices/pairing")).json()["code"] for _ in range(4)]
    assert all(SHOWN.fullmatch(code) for code in codes)
    assert len(set(codes)) == 4
    assert math.log2(10**15) >= 40  # bits: ten minutes of guesses at any allowed rate is nothing
    # As shown, as the app's numeric field takes it (digits only), and with spaces.
    typed = [codes[0], codes[1].replace("-", ""), codes[2].replace("-", " ")]
    for n, code in enumerate(typed):
        assert await register(app, f"10.0.0.{n}", f"Code {code}") == 201
    # Six digits, as the codes were, are no code at all.
    assert await register(app, "10.0.1.1", f"Code {codes[3].replace('-', '')[:6]}") == 401


async def test_failed_codes_are_bounded_across_addresses(
    app: FastAPI, pairing: dict[str, str]
) -> None:
    # DEVICE_CODE_FAILURE_LIMIT (5/minute here) counts failed codes from every address: a
    # code names no account before it matches, so one bucket bounds all guessing.
    guesses = [await register(app, f"198.51.100.{n}", f"Code {n:015d}") for n in range(7)]
    assert guesses == [401] * 5 + [429] * 2
    # While the bucket is full no code is evaluated, a right one neither; tokens still work.
    assert await register(app, "198.51.100.200", f"Code {pairing['code']}") == 429
    assert await register(app, "198.51.100.201", f"Bearer {pairing['token']}") == 201


async def test_parallel_guesses_cannot_outrun_the_limit(app: FastAPI) -> None:
    # Attempts still being checked count: twenty at once from one address get three checks.
    # (On PostgreSQL they overlap; SQLite's one connection takes requests one at a time.)
    guesses = await asyncio.gather(
        *(register(app, "203.0.113.7", f"Code {n:015d}") for n in range(20))
    )
    assert sorted(guesses) == [401] * 3 + [429] * 17


async def test_failed_passwords_are_bounded_per_account_across_addresses(
    app: FastAPI, pairing: dict[str, str]
) -> None:
    async with phone_at(app, "192.0.2.1") as phone:
        first = await phone.post(
            "/device",
            json={"name": "Pixel"},
            headers={"Authorization": f"Bearer {pairing['token']}"},
        )
    login, password = first.json()["login"], first.json()["password"]

    def basic(secret: str) -> str:
        return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()

    # DEVICE_AUTH_LIMIT (3/minute here) per address, and per account once a login names it.
    guesses = [await register(app, f"192.0.2.{10 + n}", basic(f"guess-{n}")) for n in range(5)]
    assert guesses == [401] * 3 + [429] * 2
    assert await register(app, "192.0.2.100", basic(password)) == 429
