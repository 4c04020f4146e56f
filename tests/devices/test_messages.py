"""Messages through phones, as the app pulls and reports them: routing to the account's SIMs,
the idempotent pull, state reports, pinned SIMs, limits, and the lease a phone that never
takes its messages loses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import make_settings, wait_for
from tests.devices.test_registration import MOBILE, paired, phone, register
from tests.eventually import eventually
from textbridge.db import Database
from textbridge.kit.clock import utcnow
from textbridge.models import Message
from textbridge.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, device_take_seconds=2, device_send_seconds=2)


async def a_phone(tenant: httpx.AsyncClient) -> dict[str, Any]:
    pairing = await paired(tenant)
    answer = await register(tenant, f"Bearer {pairing['token']}")
    assert answer.status_code == 201, answer.text
    device: dict[str, Any] = answer.json()
    return device


async def pull(app: httpx.AsyncClient, count: int, *, within: float = 10) -> list[dict[str, Any]]:
    """What the phone gets, once the dispatcher has given it ``count`` messages (none: asked
    once)."""

    async def given() -> list[dict[str, Any]]:
        answer = await app.get(f"{MOBILE}/message")
        assert answer.status_code == 200, answer.text
        messages: list[dict[str, Any]] = answer.json()
        assert len(messages) >= count, messages
        return messages

    return await eventually(given, within=within) if count else await given()


def state(message_id: str, name: str, error: str | None = None, **times: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "state": name,
        "recipients": [{"phoneNumber": "+14155550100", "state": name, "error": error}],
        "states": times,
    }


async def status_of(tenant: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await tenant.get(f"/v1/messages/{message_id}")).json()
    return found


async def test_the_phone_pulls_its_messages_and_reports_them(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    balance = (await tenant.get("/v1/account")).json()["balance"]
    sent = await tenant.post(
        "/v1/messages", json={"to": [f"+1415555010{n}" for n in range(4)], "text": "Hi"}
    )
    ids = [m["id"] for m in sent.json()["messages"]]
    async with phone(tenant, device["token"]) as app:
        given = await pull(app, 4)
        assert sorted(m["id"] for m in given) == sorted(ids)
        first = given[0]
        assert first["textMessage"] == {"text": "Hi"}
        assert first["state"] == "Pending"
        assert first["simNumber"] in (1, 2)
        assert {m["simNumber"] for m in given} == {1, 2}  # the least busy SIM each time
        assert first["createdAt"].endswith("Z")
        assert len(await pull(app, 4)) == 4  # the pull is idempotent until a report

        processed = await app.patch(f"{MOBILE}/message", json=[state(i, "Processed") for i in ids])
        assert processed.status_code == 204, processed.text
        assert (await app.get(f"{MOBILE}/message")).json() == []  # taken

        at = "2026-11-22T10:00:00.123+02:00"
        reports = [
            state(ids[0], "Delivered", Sent=at, Delivered=at),
            state(ids[1], "Failed", error="RESULT_ERROR_GENERIC_FAILURE"),
            state(ids[2], "Sent", Sent=at),
            state("unknown-id", "Sent", Sent=at),
        ]
        assert (await app.patch(f"{MOBILE}/message", json=reports)).status_code == 204
    delivered, failed, out, waiting = [await status_of(tenant, i) for i in ids]
    assert (delivered["status"], delivered["channel"]) == ("delivered", "device")
    assert datetime.fromisoformat(delivered["status_times"]["sent"]) == datetime(
        2026, 11, 22, 8, 0, 0, 123000, tzinfo=UTC
    )
    assert (failed["status"], failed["error"]["code"]) == ("failed", "phone_failed")
    assert failed["error"]["message"] == "RESULT_ERROR_GENERIC_FAILURE"
    assert out["status"] == "sent"
    assert waiting["status"] == "dispatching"
    # The failed one is refunded: three of four charged.
    after = (await tenant.get("/v1/account")).json()["balance"]
    assert round(balance - after, 6) == round(3 * float(delivered["price"]), 6)


async def test_a_message_pins_its_sim(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    sims = (await tenant.get("/v1/sim-cards")).json()
    second = next(s for s in sims if s["sim_number"] == 2)
    for _ in range(3):
        answer = await tenant.post(
            "/textlink/api/send-sms",
            json={"phone_number": "+14155550100", "text": "x", "sim_card_id": second["id"]},
        )
        assert answer.json()["ok"] is True, answer.text
        native = await tenant.post(
            "/v1/messages", json={"to": "+14155550100", "text": "y", "sim_card_id": second["id"]}
        )
        assert native.status_code == 202, native.text
    code = await tenant.post(
        "/textlink/api/send-code",
        json={"phone_number": "+14155550100", "sim_card_id": second["id"]},
    )
    assert code.json()["ok"] is True, code.text
    async with phone(tenant, device["token"]) as app:
        given = await pull(app, 7)
    assert [m["simNumber"] for m in given] == [2] * 7
    assert any(code.json()["code"] in m["message"] for m in given)  # filled in at the pull


async def test_a_message_can_name_its_channel(tenant: httpx.AsyncClient) -> None:
    """An account with phones still reaches the simulator when a message asks for it."""
    await a_phone(tenant)
    answer = await tenant.post(
        "/v1/messages", json={"to": "+14155550100", "text": "x", "channel": "simulator"}
    )
    assert answer.status_code == 202, answer.text
    message_id = answer.json()["messages"][0]["id"]
    found = await wait_for(tenant, message_id)
    assert found["status"] == "delivered"
    assert (found["channel"], found["device_id"]) == ("simulator", None)
    for channel, named in (("carrier-pigeon", "one of: device, simulator"), ("", "one of")):
        refused = await tenant.post(
            "/v1/messages", json={"to": "+14155550100", "text": "x", "channel": channel}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["field"] == "channel"
        assert named in refused.json()["error"]["message"]
    voice = {"to": "+14155550100", "text": "x", "type": "voice", "language": "en-gb",
             "gender": "female", "channel": "device"}  # fmt: skip
    refused = await tenant.post("/v1/messages", json=voice)
    assert refused.status_code == 400, refused.text
    assert "does not send voice" in refused.json()["error"]["message"]


async def test_a_sim_under_its_limit_leaves_the_rest_queued(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    for sim in (await tenant.get("/v1/sim-cards")).json():
        await tenant.patch(f"/v1/sim-cards/{sim['id']}", json={"per_minute": 1})
    sent = await tenant.post(
        "/v1/messages", json={"to": [f"+1415555010{n}" for n in range(3)], "text": "Hi"}
    )
    ids = [m["id"] for m in sent.json()["messages"]]
    async with phone(tenant, device["token"]) as app:
        given = await pull(app, 2)
        await asyncio.sleep(0.3)  # the dispatcher looks every 0.1 s: the third stays queued
        assert len(await pull(app, 2)) == 2
    [left] = [i for i in ids if i not in {m["id"] for m in given}]
    waiting = await status_of(tenant, left)
    assert waiting["status"] == "queued"
    assert waiting["error"]["code"] == "senders_busy"
    assert waiting["attempts"] == 0  # waiting for a SIM is not an attempt


async def test_a_phone_that_never_takes_its_messages_loses_them_to_another(
    tenant: httpx.AsyncClient,
) -> None:
    lazy = await a_phone(tenant)
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    async with phone(tenant, lazy["token"]) as app:
        assert [m["id"] for m in await pull(app, 1)] == [message_id]
    await tenant.patch(f"/v1/devices/{lazy['id']}", json={"enabled": False})
    eager = await a_phone(tenant)
    async with phone(tenant, eager["token"]) as app:  # after DEVICE_TAKE_SECONDS (2 here)
        assert [m["id"] for m in await pull(app, 1, within=15)] == [message_id]
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
    await tenant.patch(f"/v1/devices/{lazy['id']}", json={"enabled": True})
    async with phone(tenant, lazy["token"]) as app:
        assert await pull(app, 0) == []
        # Its late report is ignored: the message is the other phone's now.
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Failed", error="x")])
    assert (await status_of(tenant, message_id))["status"] == "dispatching"


async def test_a_one_time_code_is_filled_in_when_the_phone_pulls(
    tenant: httpx.AsyncClient,
) -> None:
    device = await a_phone(tenant)
    started = await tenant.post("/v1/verifications", json={"phone": "+381690156360"})
    assert started.status_code == 201, started.text
    async with phone(tenant, device["token"]) as app:
        [message] = await pull(app, 1)
    text = message["textMessage"]["text"]
    assert "{code}" not in text
    code = next(word for word in text.split() if word.strip(".").isdigit()).strip(".")
    checked = await tenant.post(
        "/v1/verifications/check", json={"verification_id": started.json()["id"], "code": code}
    )
    assert checked.json()["valid"] is True


async def test_a_phone_sees_and_reports_only_its_own(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    mine = await a_phone(tenant)
    theirs = await a_phone(client)
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    async with phone(tenant, mine["token"]) as app:
        assert len(await pull(app, 1)) == 1
    async with phone(client, theirs["token"]) as app:
        assert (await app.get(f"{MOBILE}/message")).json() == []
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Failed", error="x")])
    assert (await status_of(tenant, message_id))["status"] == "dispatching"


async def test_bad_reports_are_400_in_the_apps_shape(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    async with phone(tenant, device["token"]) as app:
        for body in ([{"id": "x", "state": "Exploded"}], {"id": "x"}, [{"state": "Sent"}]):
            answer = await app.patch(f"{MOBILE}/message", json=body)
            assert answer.status_code == 400, answer.text
            assert "message" in answer.json()
        assert (await app.get(f"{MOBILE}/message", params={"order": "random"})).status_code == 400


async def test_a_phone_that_dies_after_taking_returns_what_it_never_reported_sent(
    tenant: httpx.AsyncClient,
) -> None:
    dying = await a_phone(tenant)
    sent = await tenant.post(
        "/v1/messages", json={"to": ["+14155550100", "+14155550101"], "text": "Hi"}
    )
    reported, unreported = (m["id"] for m in sent.json()["messages"])
    async with phone(tenant, dying["token"]) as app:
        await pull(app, 2)
        taken = [state(reported, "Processed"), state(unreported, "Processed")]
        await app.patch(f"{MOBILE}/message", json=taken)
        await app.patch(f"{MOBILE}/message", json=[state(reported, "Sent")])
    await tenant.patch(f"/v1/devices/{dying['id']}", json={"enabled": False})  # it died
    other = await a_phone(tenant)
    async with phone(tenant, other["token"]) as app:  # after DEVICE_SEND_SECONDS (2 here)
        again = await pull(app, 1, within=15)
        await asyncio.sleep(0.3)  # the dispatcher looks every 0.1 s: the sent one never comes
        assert [m["id"] for m in await pull(app, 1)] == [unreported]  # never what was sent
    assert [m["id"] for m in again] == [unreported]
    assert (await status_of(tenant, reported))["status"] == "sent"


async def test_a_report_that_comes_after_the_hold_lapsed_still_counts(
    tenant: httpx.AsyncClient,
) -> None:
    """A slow phone: its hold lapsed and the message went back to the queue, then its report
    came. The SMS went out: the message is delivered, never given to a phone again."""
    slow = await a_phone(tenant)
    await tenant.patch(f"/v1/devices/{slow['id']}", json={"enabled": False})  # none to take it
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    await tenant.patch(f"/v1/devices/{slow['id']}", json={"enabled": True})
    async with phone(tenant, slow["token"]) as app:
        await pull(app, 1)
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
        await tenant.patch(f"/v1/devices/{slow['id']}", json={"enabled": False})

        async def lapsed() -> bool:
            return (await status_of(tenant, message_id))["status"] == "queued"

        await eventually(lapsed, within=15)  # DEVICE_SEND_SECONDS (2 here), then housekeeping
        await tenant.patch(f"/v1/devices/{slow['id']}", json={"enabled": True})
        late = state(message_id, "Delivered", Sent="2026-11-22T10:00:00.000Z")
        assert (await app.patch(f"{MOBILE}/message", json=[late])).status_code == 204
    found = await status_of(tenant, message_id)
    assert found["status"] == "delivered"
    assert found["device_id"] == slow["id"]


async def test_a_phone_that_keeps_reporting_keeps_what_it_took(tenant: httpx.AsyncClient) -> None:
    """A phone works through what it took at its own pace, reporting each message: every
    report renews its hold on the rest (``DEVICE_SEND_SECONDS`` is how long it may stay
    silent), so no other phone is given one it is still sending."""
    slow = await a_phone(tenant)
    sent = await tenant.post(
        "/v1/messages", json={"to": [f"+1415555010{n}" for n in range(6)], "text": "Hi"}
    )
    ids = [m["id"] for m in sent.json()["messages"]]
    async with phone(tenant, slow["token"]) as app:
        assert len(await pull(app, 6)) == 6
        await app.patch(f"{MOBILE}/message", json=[state(i, "Processed") for i in ids])
        other = await a_phone(tenant)  # online, idle: it would get whatever the slow one lost
        for message_id in ids:  # 3 s in all, DEVICE_SEND_SECONDS is 2 here
            await asyncio.sleep(0.5)
            report = await app.patch(f"{MOBILE}/message", json=[state(message_id, "Delivered")])
            assert report.status_code == 204, report.text
    async with phone(tenant, other["token"]) as app:
        assert (await app.get(f"{MOBILE}/message")).json() == []
    for message_id in ids:
        found = await status_of(tenant, message_id)
        assert (found["status"], found["attempts"]) == ("delivered", 1), found


async def test_what_the_pull_shows_stays_the_phones_while_it_pulls(
    tenant: httpx.AsyncClient,
) -> None:
    """The pull hands the message over: the phone has ``DEVICE_TAKE_SECONDS`` from that pull
    to say it took it (one that pulled just before its hold lapsed had no time to)."""
    slow = await a_phone(tenant)
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    async with phone(tenant, slow["token"]) as app:
        await pull(app, 1)
        other = await a_phone(tenant)
        for _ in range(6):  # 3 s of pulls, DEVICE_TAKE_SECONDS is 2 here
            await asyncio.sleep(0.5)
            assert [m["id"] for m in (await app.get(f"{MOBILE}/message")).json()] == [message_id]
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
    async with phone(tenant, other["token"]) as app:
        assert (await app.get(f"{MOBILE}/message")).json() == []
    found = await status_of(tenant, message_id)
    assert (found["status"], found["attempts"]) == ("dispatching", 1), found


async def test_a_report_that_comes_while_the_dispatcher_takes_the_message_back_counts(
    tenant: httpx.AsyncClient, db: Database
) -> None:
    """Its hold lapsed and a dispatcher claimed the message again, but has not given it to a
    phone yet (its round takes a moment) when the phone's report comes: it went, so it is
    sent, and the dispatcher's round gives it to no one."""
    slow = await a_phone(tenant)
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    async with phone(tenant, slow["token"]) as app:
        await pull(app, 1)
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
        lease = utcnow() + timedelta(seconds=60)
        claimed = {"lease_owner": "a-dispatcher", "lease_expires_at": lease}
        async with db.transaction() as session:
            await session.execute(update(Message).where(Message.id == message_id).values(claimed))
        late = await app.patch(f"{MOBILE}/message", json=[state(message_id, "Delivered")])
        assert late.status_code == 204, late.text
    found = await status_of(tenant, message_id)
    assert (found["status"], found["device_id"]) == ("delivered", slow["id"])


async def test_a_phone_that_says_late_it_took_a_message_keeps_it(
    tenant: httpx.AsyncClient,
) -> None:
    """Its hold lapsed before its ``Processed`` came and the message waits in the queue: the
    phone has it and will send it, so it is the phone's again, never another's."""
    slow = await a_phone(tenant)
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id = sent.json()["messages"][0]["id"]
    async with phone(tenant, slow["token"]) as app:
        await pull(app, 1)
        for sim in (await tenant.get("/v1/sim-cards")).json():  # no SIM to give it to
            await tenant.patch(f"/v1/sim-cards/{sim['id']}", json={"enabled": False})

        async def lapsed() -> bool:
            return (await status_of(tenant, message_id))["status"] == "queued"

        await eventually(lapsed, within=15)  # DEVICE_TAKE_SECONDS (2 here), then housekeeping
        taken = await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
        assert taken.status_code == 204, taken.text
        assert (await status_of(tenant, message_id))["status"] == "dispatching"
        for sim in (await tenant.get("/v1/sim-cards")).json():
            await tenant.patch(f"/v1/sim-cards/{sim['id']}", json={"enabled": True})
        await asyncio.sleep(0.3)  # the dispatcher looks every 0.1 s: it would have given it
        assert (await app.get(f"{MOBILE}/message")).json() == []  # taken: not given again
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Delivered")])
    # Taken maybe from a dispatcher's claim that found no SIM (the attempt it counted stays).
    assert (await status_of(tenant, message_id))["status"] == "delivered"
