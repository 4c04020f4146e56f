"""TextFlow's and TextLink's send-code / verify-code, with their documented answers, and their
published clients unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from textbridge.db import Database
from textbridge.kit.clock import utcnow
from textbridge.models import Account
from textbridge.verify import service as verify_service


async def test_textflow_send_code_and_verify_code(client: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    sent = await client.post(
        "/textflow/api/send-code",
        json={"phone_number": "+381690156360", "service_name": "Guest", "seconds": 120},
    )
    assert sent.status_code == 200, sent.text
    body = sent.json()
    data = body.pop("data")
    assert body == {"ok": True, "status": 200, "message": "Verification SMS sent. "}
    code = data["verification_code"]
    assert code.isdigit()
    assert len(code) == 6
    assert data["message_text"] == f"Your verification code for Guest is: {code}"
    assert before + 119_000 <= data["expires"] <= int(time.time() * 1000) + 121_000

    wrong = "000000" if code != "000000" else "111111"
    invalid = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+381690156360", "code": wrong}
    )
    assert invalid.status_code == 400
    assert invalid.json() == {
        "ok": True,
        "status": 400,
        "message": "The code is invalid. ",
        "valid": False,
        "expires": data["expires"],
    }
    valid = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+381690156360", "code": code}
    )
    assert valid.status_code == 200
    assert valid.json() == {
        "ok": True,
        "status": 200,
        "message": "The code is valid. ",
        "valid": True,
        "expires": data["expires"],
    }  # no valid_code unless the account asks for it


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            {"phone_number": "+381690156360", "seconds": 86_401},
            400,
            {"ok": False, "status": 400, "message": "Code can not be stored more then one day."},
        ),
        (
            {"phone_number": "+381690156360", "service_name": "Bad!name"},
            400,
            {
                "ok": False,
                "status": 400,
                "message": "Provider name can not be more than 110 characters and it can only "
                "consist of letters, numbers and spaces.",
            },
        ),
        (
            {"phone_number": "+381690156360", "service_name": "x" * 111},
            400,
            {
                "ok": False,
                "status": 400,
                "message": "Provider name can not be more than 110 characters and it can only "
                "consist of letters, numbers and spaces.",
            },
        ),
        (
            {"phone_number": "+1"},
            400,
            {"ok": False, "status": 400, "message": "Invalid phone number"},
        ),
    ],
)
async def test_textflow_send_code_refusals(
    client: httpx.AsyncClient, body: dict[str, object], status: int, answer: dict[str, object]
) -> None:
    response = await client.post("/textflow/api/send-code", json=body)
    assert (response.status_code, response.json()) == (status, answer)


async def test_textflow_verify_code_refusals(client: httpx.AsyncClient) -> None:
    bad_format = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+381690156360", "code": "12ab"}
    )
    assert (bad_format.status_code, bad_format.json()) == (
        400,
        {"ok": True, "status": 400, "message": "Invalid code", "valid": False},
    )
    bad_phone = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+1", "code": "123456"}
    )
    assert bad_phone.json() == {
        "ok": False,
        "status": 400,
        "message": "Invalid phone number",
        "valid": False,
    }
    for path in ("/textflow/api/send-code", "/textflow/api/verify-code"):
        bad_key = await client.post(
            path,
            json={"phone_number": "+381690156360", "code": "123456"},
            headers={"Authorization": "Bearer nope-nope-nope-nope"},
        )
        assert bad_key.status_code == 401
        assert bad_key.json()["message"] == "Invalid API key or user id."


async def test_textflow_echoes_valid_code_when_the_account_asks(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        await session.execute(update(Account).values(settings={"echo_valid_code": True}))
    sent = await client.post("/textflow/api/send-code", json={"phone_number": "+381690156360"})
    code = sent.json()["data"]["verification_code"]
    valid = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+381690156360", "code": code}
    )
    assert valid.json()["valid_code"] == code


async def test_textflow_expired_code(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = await client.post(
        "/textflow/api/send-code", json={"phone_number": "+381690156360", "seconds": 1}
    )
    code = sent.json()["data"]["verification_code"]
    # Its second is over: the verifications' clock is moved on rather than waited for.
    monkeypatch.setattr(verify_service, "utcnow", lambda: utcnow() + timedelta(seconds=1))
    expired = await client.post(
        "/textflow/api/verify-code", json={"phone_number": "+381690156360", "code": code}
    )
    assert expired.status_code == 400
    assert expired.json()["message"] == "The code has expired. "


async def test_textlink_send_code_and_verify_code(client: httpx.AsyncClient) -> None:
    sent = await client.post(
        "/textlink/api/send-code",
        json={
            "phone_number": "+381690156360",
            "service_name": "Tribal",
            "expiration_time": 600_000,
            "source_country": "RS",
        },
    )
    assert sent.status_code == 200
    assert set(sent.json()) == {"ok", "code"}
    code = sent.json()["code"]
    wrong = "000000" if code != "000000" else "111111"
    refused = await client.post(
        "/textlink/api/verify-code", json={"phone_number": "+381690156360", "code": wrong}
    )
    assert refused.json() == {"ok": False, "message": "The code is invalid"}
    accepted = await client.post(
        "/textlink/api/verify-code", json={"phone_number": "+381690156360", "code": code}
    )
    assert accepted.json() == {"ok": True}
    again = await client.post(
        "/textlink/api/verify-code", json={"phone_number": "+381690156360", "code": code}
    )
    assert again.json() == {"ok": False, "message": "The code was already used"}
    premium = await client.post("/textlink/api/send-code", json={"phone_number": "+449098790000"})
    assert premium.json()["ok"] is False
    assert "premium rate" in premium.json()["message"]


def test_the_published_clients_verify_phones(
    live_server: Callable[..., ServerProcess], redirect: Callable[[str, str], None]
) -> None:
    import textflowsms as tf
    import textlink as tl

    server = live_server(verify_resend_cooldown_seconds=0)
    redirect("https://textlinksms.com", server.url)
    redirect("https://textflow.me/api", f"{server.url}/textflow/api")
    tl.useKey(ADMIN_KEY)
    sent = tl.sendVerificationSMS("+381637443242", service_name="Tribal")
    assert sent.ok is True
    assert tl.verifyCode("+381637443242", sent.code).ok is True

    tf.useKey(ADMIN_KEY)
    started = tf.sendVerificationSMS("+381690156360", service_name="Guest")
    assert started.ok is True
    checked = tf.verifyCode("+381690156360", started.data.verification_code)
    assert (checked.ok, checked.valid) == (True, True)
    assert not hasattr(checked, "valid_code")
    # The codes went to the clients and the phones, never to the log.
    log = server.log.read_text()
    assert sent.code not in log
    assert started.data.verification_code not in log
