"""Phone verification through the native API, to reference/otp-security.md."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from tests.conftest import keyed, make_settings, wait_for
from textbridge.db import Database
from textbridge.kit.clock import utcnow
from textbridge.kit.secrets import one_time_code
from textbridge.models import Verification
from textbridge.settings import Settings
from textbridge.verify import service as verify_service


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, verify_resend_cooldown_seconds=0)


async def code_of(db: Database, settings: Settings, verification_id: str) -> str:
    """What the phone received (the test reads the nonce; the code is stored nowhere)."""
    async with db.transaction() as session:
        verification = (
            await session.execute(select(Verification).where(Verification.id == verification_id))
        ).scalar_one()
    return one_time_code(settings.resolved_secret_key, verification.nonce, verification.code_length)


async def start(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    answer = await client.post("/v1/verifications", json={"phone": "+381690156360", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()
    return created


async def test_the_code_is_sent_checked_once_and_never_stored(
    client: httpx.AsyncClient, db: Database, settings: Settings, tmp_path: Path
) -> None:
    verification = await start(client, service="Guest")
    assert verification["status"] == "pending"
    assert "code" not in verification
    code = await code_of(db, settings, str(verification["id"]))
    message = await wait_for(client, str(verification["message_id"]))
    assert message["status"] == "delivered"
    # The message log shows where the code went, not the code.
    assert message["text"] == "Your verification code for Guest is: {code}"

    checked = await client.post(
        "/v1/verifications/check", json={"phone": "+381690156360", "service": "Guest", "code": code}
    )
    assert checked.json()["valid"] is True
    assert checked.json()["verification"]["status"] == "approved"
    again = await client.post(
        "/v1/verifications/check", json={"verification_id": verification["id"], "code": code}
    )
    assert again.json()["valid"] is False  # single use

    if db.is_sqlite:  # the database file and its write-ahead log
        files = list(Path(db.engine.url.database or "").parent.glob("suite.db*"))
        assert files
        assert not any(code.encode() in file.read_bytes() for file in files)
    else:
        async with db.transaction() as session:
            for table in ("messages", "verifications", "ledger_entries", "idempotency_records"):
                rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
                assert code not in repr(rows), table


async def test_five_wrong_checks_kill_it(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    verification = await start(client)
    code = await code_of(db, settings, str(verification["id"]))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        answer = await client.post(
            "/v1/verifications/check", json={"verification_id": verification["id"], "code": wrong}
        )
        assert answer.json()["valid"] is False
    answer = await client.post(
        "/v1/verifications/check", json={"verification_id": verification["id"], "code": code}
    )
    assert answer.json()["valid"] is False
    assert answer.json()["verification"]["status"] == "max_attempts_reached"


async def test_fifty_parallel_guesses_get_five_evaluations(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    verification = await start(client)
    code = await code_of(db, settings, str(verification["id"]))
    guesses = [*[f"{n:06d}" for n in range(50) if f"{n:06d}" != code][:49], code]
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/verifications/check",
                json={"verification_id": verification["id"], "code": guess},
            )
            for guess in guesses
        )
    )
    async with db.transaction() as session:
        attempts = (
            await session.execute(
                select(Verification.attempts).where(Verification.id == verification["id"])
            )
        ).scalar_one()
    assert attempts == 5
    assert sum(answer.json()["valid"] for answer in answers) <= 1


async def test_a_resend_sends_the_same_code_up_to_five_times(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    first = await start(client)
    code = await code_of(db, settings, str(first["id"]))
    for sends in range(2, 6):
        again = await start(client)
        assert (again["id"], again["sends"]) == (first["id"], sends)
        assert await code_of(db, settings, str(again["id"])) == code
    refused = await client.post("/v1/verifications", json={"phone": "+381690156360"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"


async def test_a_resend_waits_for_its_cooldown(
    db: Database, tmp_path: Path, database_url: str
) -> None:
    from tests.conftest import client_of

    async with client_of(make_settings(database_url, tmp_path)) as http:
        await start(http)
        refused = await http.post("/v1/verifications", json={"phone": "+381690156360"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 30


async def test_expiry_lifetime_and_cancel(
    client: httpx.AsyncClient, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = await start(client, lifetime_seconds=1)
    code = await code_of(db, settings, str(short["id"]))
    # Its second is over: the verifications' clock is moved on rather than waited for.
    monkeypatch.setattr(verify_service, "utcnow", lambda: utcnow() + timedelta(seconds=1))
    answer = await client.post(
        "/v1/verifications/check", json={"verification_id": short["id"], "code": code}
    )
    assert (answer.json()["valid"], answer.json()["verification"]["status"]) == (False, "expired")
    other = await start(client, phone="+14155550100")
    cancelled = await client.post(f"/v1/verifications/{other['id']}/cancel")
    assert cancelled.json()["status"] == "canceled"
    assert (await client.get(f"/v1/verifications/{other['id']}")).json()["status"] == "canceled"


async def test_bound_to_the_account(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    verification = await start(client)
    code = await code_of(db, settings, str(verification["id"]))
    created = await client.post("/v1/accounts", json={"name": "other", "balance": 1})
    async with keyed(client, created.json()["api_key"]) as other:
        answer = await other.post(
            "/v1/verifications/check", json={"verification_id": verification["id"], "code": code}
        )
        assert answer.status_code == 404
        answer = await other.post(
            "/v1/verifications/check", json={"phone": "+381690156360", "code": code}
        )
        assert answer.status_code == 404
        assert (await other.get(f"/v1/verifications/{verification['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+449098790000"}, "phone"),  # premium rate
        ({"phone": "+18005550100"}, "phone"),  # toll free
        ({"phone": "+442079460958"}, "phone"),  # a landline
        ({"phone": "12"}, "phone"),
        ({"phone": "+381690156360", "code_length": 3}, "code_length"),
        ({"phone": "+381690156360", "lifetime_seconds": 86_401}, "lifetime_seconds"),
        ({"phone": "+381690156360", "template": "no code here"}, "template"),
        ({"phone": "+381690156360", "service": "Bad{code}"}, "service"),
    ],
)
async def test_refused_starts(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await client.post("/v1/verifications", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert (await client.get("/v1/messages")).json()["data"] == []


@pytest.mark.parametrize("code", ["12", "abcdef", "１２３４５６", "12345678901"])
async def test_bad_code_format(client: httpx.AsyncClient, code: str) -> None:
    verification = await start(client)
    answer = await client.post(
        "/v1/verifications/check", json={"verification_id": verification["id"], "code": code}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "code"


async def test_the_code_goes_ahead_of_a_campaign(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/bulk-jobs", json={"to": [f"+1415700{i:04d}" for i in range(3000)], "text": "Sale"}
    )
    verification = await start(client)
    started = time.monotonic()
    message = await wait_for(client, str(verification["message_id"]), {"sent", "delivered"})
    assert message["status"] in ("sent", "delivered")
    [job] = (await client.get("/v1/bulk-jobs")).json()["data"]
    assert job["pending"] > 1000, time.monotonic() - started
