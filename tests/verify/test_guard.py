"""Rate limits and the SMS-pumping guard on starting verifications."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import update

from tests.conftest import client_of, keyed, make_settings
from textbridge.db import Database
from textbridge.models import Account


async def start(http: httpx.AsyncClient, phone: str) -> httpx.Response:
    return await http.post("/v1/verifications", json={"phone": phone})


async def test_per_phone_limit(db: Database, database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, verify_limit_per_phone="2/10 minutes")
    async with client_of(settings) as http:
        for _ in range(2):
            started = await start(http, "+381690156360")
            assert started.status_code == 201
            await http.post(f"/v1/verifications/{started.json()['id']}/cancel")
        refused = await start(http, "+381690156360")
        assert refused.status_code == 429
        assert refused.json()["error"]["field"] == "phone"
        assert 1 <= int(refused.headers["Retry-After"]) <= 600
        assert (await start(http, "+381690156361")).status_code == 201


async def test_per_key_and_per_ip_limits(db: Database, database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, verify_limit_per_key="3/minute")
    async with client_of(settings) as http:
        codes = [(await start(http, f"+38169015{i:04d}")).status_code for i in range(4)]
        assert codes == [201, 201, 201, 429]
    settings = make_settings(database_url, tmp_path, verify_limit_per_ip="2/minute")
    async with client_of(settings) as http:
        codes = [(await start(http, f"+38169025{i:04d}")).status_code for i in range(3)]
        assert codes == [201, 201, 429]


async def test_a_burst_on_one_prefix_blocks_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, verify_prefix_burst=3)
    async with client_of(settings) as http:
        codes = [(await start(http, f"+38169035{i:04d}")).status_code for i in range(4)]
        assert codes == [201, 201, 201, 429]
        blocked = await start(http, "+381690359999")
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 3600
        assert (await start(http, "+381690450000")).status_code == 201


async def test_country_allow_list(db: Database, database_url: str, tmp_path: Path) -> None:
    async with client_of(make_settings(database_url, tmp_path)) as http:
        async with db.transaction() as session:
            await session.execute(update(Account).values(settings={"verify_countries": ["RS"]}))
        assert (await start(http, "+381690156360")).status_code == 201
        refused = await start(http, "+14155550100")
        assert refused.status_code == 400
        assert "RS" in refused.json()["error"]["message"]


async def tenants(http: httpx.AsyncClient, count: int) -> list[httpx.AsyncClient]:
    """Clients of new accounts, each with its own key."""
    clients = []
    for n in range(count):
        answer = await http.post("/v1/accounts", json={"name": f"tenant-{n}", "balance": 1000})
        assert answer.status_code == 201, answer.text
        clients.append(keyed(http, answer.json()["api_key"]))
    return clients


async def test_a_burst_blocks_the_prefix_for_that_account_only(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, verify_prefix_burst=3)
    async with client_of(settings) as http:
        pumper, other = await tenants(http, 2)
        async with pumper, other:
            codes = [(await start(pumper, f"+1212555{100 + i:04d}")).status_code for i in range(4)]
            assert codes == [201, 201, 201, 429]
            assert (await start(pumper, "+12125559999")).status_code == 429
            # Another account's codes to the same prefix are its own business.
            assert (await start(other, "+12125559999")).status_code == 201


async def test_a_cross_account_burst_blocks_only_when_the_operator_sets_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, tmp_path, verify_prefix_burst=3, verify_prefix_burst_all_accounts=4
    )
    async with client_of(settings) as http:
        first, second, third = await tenants(http, 3)
        async with first, second, third:
            for i in range(3):
                assert (await start(first, f"+1212555{100 + i:04d}")).status_code == 201
            assert (await start(second, "+12125550200")).status_code == 201
            refused = await start(second, "+12125550201")  # the fifth to the prefix in all
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) > 3600
            assert (await start(third, "+12125559999")).status_code == 429
            assert (await start(third, "+12125569999")).status_code == 201
