"""The device protocol as the unmodified "SMS Gateway for Android" app speaks it, byte for byte.

Every request here is one the app sends, read from capcom6/android-sms-gateway at v1.68.0
(commit 0cdc5d86c6f3cc24101f27feefd926e801e8b2c7): ``GatewayApi.kt`` (its Ktor client and data
classes), ``GatewayService.kt`` and ``SendStateWorker.kt`` (what fills them), and for the
events the phone posts to us ``SendWebhookWorker.kt``, ``PayloadSingingPlugin.kt`` and
``SmsEventPayload.kt``. The bodies are the strings the app's Gson writes: compact, fields in
declaration order, null fields left out (Gson's default; the app never calls
``serializeNulls``), dates in the Gson pattern of ``GsonBuilder.kt`` (``yyyy-MM-dd'T'HH:mm:ss.SSS``
and the ISO 8601 zone, ``Z`` or ``+03:00``) in the phone's own zone. The answers are checked
the way the app's Kotlin classes read them: the keys they read, with the JSON types Gson needs,
and every date matching that same pattern.

Where the reference (../shared/reference/smsgate-mobile-api.md) and the app differ, the app
wins: it leaves ``pushToken`` and ``error`` out when null rather than sending ``null``, and it
sends no ``Authorization`` at all to register when the user set no private token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import BASE_URL, make_settings
from tests.devices.test_registration import paired
from tests.eventually import eventually
from textbridge.settings import Settings

MOBILE = "/api/mobile/v1"
PUBLIC_URL = "https://gateway.example.org"
# The Ktor client's headers: the UserAgent plugin, ContentNegotiation's Accept (Gson), OkHttp.
APP = {
    "User-Agent": "me.capcom.smsgateway/1.68.0",
    "Accept": "application/json",
    "Accept-Charset": "UTF-8",
    "Accept-Encoding": "gzip",
}
JSON = {"Content-Type": "application/json"}
# The app's Gson date pattern: three fraction digits, then Z or +hh:mm (ISO 8601 zone).
GSON_DATE = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:Z|[+-]\d\d:\d\d)\Z")
# The events of the app's WebHookEvent enum (its @SerializedName values).
APP_EVENTS = {
    "sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping",
    "sms:data-received", "mms:received", "mms:downloaded", "app:started", "sms:cancelled",
}  # fmt: skip
# Two SIMs as GatewayService.toDTO() redacts them: every character but the last four starred,
# the carrier name too; a SIM whose number Android does not know has no phoneNumber at all.
SIMS = (
    '[{"slotIndex":0,"simNumber":1,"phoneNumber":"********0000","carrierName":"****bile",'
    '"iccid":"****************1234"},{"slotIndex":1,"simNumber":2,"carrierName":"****fone",'
    '"iccid":"****************5678"}]'
)
NAME = "samsung/beyond0ltexx"  # Build.MANUFACTURER + "/" + Build.PRODUCT


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, public_url=PUBLIC_URL)


@pytest.fixture
async def device_app(tenant: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The app's HTTP client: its headers and no credentials of its own."""
    async with httpx.AsyncClient(
        transport=tenant._transport, base_url=f"{BASE_URL}{MOBILE}", headers=APP
    ) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(login: str, password: str) -> dict[str, str]:
    """Ktor's ``"$username:$password".encodeBase64()``: standard base64 of the UTF-8 bytes."""
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def gson_date(value: object) -> datetime:
    """A date as the app's Gson reads it: the exact pattern, and a real moment."""
    assert isinstance(value, str), value
    assert GSON_DATE.match(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def register_body(push_token: str | None = None) -> str:
    """``DeviceRegisterRequest(name, pushToken, simCards)`` as Gson writes it."""
    token = "" if push_token is None else f',"pushToken":"{push_token}"'
    return f'{{"name":"{NAME}"{token},"simCards":{SIMS}}}'


async def register(
    app: httpx.AsyncClient, authorization: dict[str, str], body: str | None = None
) -> httpx.Response:
    return await app.post(
        "/device", content=body or register_body(), headers={**authorization, **JSON}
    )


async def a_phone(tenant: httpx.AsyncClient, app: httpx.AsyncClient) -> dict[str, Any]:
    """A phone registered with the account's pairing token (the app's "private token")."""
    answer = await register(app, bearer((await paired(tenant))["token"]))
    assert answer.status_code == 201, answer.text
    device: dict[str, Any] = answer.json()
    return device


async def send(tenant: httpx.AsyncClient, *numbers: str, text: str = "Hi") -> list[str]:
    answer = await tenant.post("/v1/messages", json={"to": list(numbers), "text": text})
    assert answer.status_code in (200, 201, 202), answer.text
    return [message["id"] for message in answer.json()["messages"]]


async def pull(
    app: httpx.AsyncClient, token: str, count: int, order: str = "lifo"
) -> list[dict[str, Any]]:
    """``GET /message?order=...`` once the dispatcher has given the phone ``count`` messages
    (none: asked once)."""

    async def given() -> list[dict[str, Any]]:
        answer = await app.get("/message", params={"order": order}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        messages: list[dict[str, Any]] = answer.json()
        assert len(messages) >= count, messages
        return messages

    return await eventually(given) if count else await given()


def state_body(message_id: str, state: str, number: str, *, error: str = "", **times: str) -> str:
    """``listOf(MessagePatchRequest(id, state, recipients, states))`` from SendStateWorker: the
    recipient's error only when it has one, the states keyed by the enum's name."""
    recipient_error = f',"error":"{error}"' if error else ""
    states = ",".join(f'"{name}":"{at}"' for name, at in times.items())
    return (
        f'[{{"id":"{message_id}","state":"{state}","recipients":[{{"phoneNumber":"{number}",'
        f'"state":"{state}"{recipient_error}}}],"states":{{{states}}}}}]'
    )


async def report(app: httpx.AsyncClient, token: str, body: str) -> httpx.Response:
    return await app.patch("/message", content=body, headers={**bearer(token), **JSON})


async def status_of(tenant: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await tenant.get(f"/v1/messages/{message_id}")).json()
    return found


# Registration ----------------------------------------------------------------------------


async def test_the_three_ways_to_register_answer_the_apps_response(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    pairing = await paired(tenant)
    by_token = await register(device_app, bearer(pairing["token"]))
    assert by_token.status_code == 201, by_token.text
    first = by_token.json()
    # DeviceRegisterResponse(id, token, login, password: String?)
    assert list(first) == ["id", "token", "login", "password"]
    assert len(first["id"]) == 21
    assert all(isinstance(first[key], str) and first[key] for key in first)

    by_login = await register(
        device_app, basic(first["login"], first["password"]), register_body("fcm-token-1")
    )
    assert by_login.status_code == 201, by_login.text
    second = by_login.json()
    assert list(second) == ["id", "token", "login", "password"]
    assert (len(second["id"]), second["login"], second["password"]) == (21, first["login"], None)

    # The app's code field takes digits only (a number field): the dashes shown are not typed.
    typed = pairing["code"].replace("-", "")
    by_code = await register(device_app, {"Authorization": f"Code {typed}"})
    assert by_code.status_code == 201, by_code.text
    third = by_code.json()
    assert (len(third["id"]), third["login"], third["password"]) == (21, first["login"], None)
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert len({first["token"], second["token"], third["token"]}) == 3

    # The form with explicit nulls (the reference's) is taken as well.
    explicit = f'{{"name":"Pixel 7","pushToken":null,"simCards":{SIMS}}}'
    code = await device_app.get("/user/code", headers=basic(first["login"], first["password"]))
    assert code.status_code == 200, code.text
    assert list(code.json()) == ["code", "validUntil"]
    assert re.fullmatch(r"\d{5}-\d{5}-\d{5}", code.json()["code"])
    typed = code.json()["code"].replace("-", "")
    fourth = await register(device_app, {"Authorization": f"Code {typed}"}, explicit)
    assert fourth.status_code == 201, fourth.text
    names = {device["name"] for device in (await tenant.get("/v1/devices")).json()}
    assert names == {NAME, "Pixel 7"}


BAD_CREDENTIALS = [
    {},  # RegistrationMode.Anonymous with no private token set: no header at all
    {"Authorization": "Bearer tbp_not-a-pairing-token"},
    {"Authorization": "Basic " + base64.b64encode(b"NOBODY00:password").decode()},
    {"Authorization": "Basic not base64!"},
    {"Authorization": "Code 000000"},
    {"Authorization": "Code "},
    {"Authorization": "Token abc"},
]


async def test_bad_registration_credentials_are_401_with_a_message(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    for authorization in BAD_CREDENTIALS:
        answer = await register(device_app, authorization)
        assert answer.status_code == 401, (authorization, answer.text)
        assert list(answer.json()) == ["message"]
        assert isinstance(answer.json()["message"], str)
    assert (await tenant.get("/v1/devices")).json() == []


async def test_a_name_over_128_characters_is_400_naming_it(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    token = bearer((await paired(tenant))["token"])
    too_long = await register(device_app, token, f'{{"name":"{"x" * 129}","simCards":[]}}')
    assert too_long.status_code == 400, too_long.text
    assert list(too_long.json()) == ["message"]
    assert "name" in too_long.json()["message"]
    longest = await register(device_app, token, f'{{"name":"{"x" * 128}","simCards":[]}}')
    assert longest.status_code == 201, longest.text


# Dates -------------------------------------------------------------------------------------


async def test_every_date_the_server_emits_is_gsons_pattern(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    before = datetime.now(UTC).replace(microsecond=0)
    me = (await device_app.get("/device", headers=bearer(device["token"]))).json()
    for key in ("createdAt", "updatedAt", "lastSeen"):
        assert gson_date(me["device"][key]) >= before.replace(second=0), key
    code = await device_app.get("/user/code", headers=basic(device["login"], device["password"]))
    assert gson_date(code.json()["validUntil"]) > datetime.now(UTC)

    await send(tenant, "+14155550123")
    [message] = await pull(device_app, device["token"], 1)
    created, valid_until = gson_date(message["createdAt"]), gson_date(message["validUntil"])
    assert created <= datetime.now(UTC) < valid_until
    assert message["scheduleAt"] is None


@pytest.mark.parametrize(
    ("sent_at", "instant"),
    [
        # Android 7+: SimpleDateFormat's ISO 8601 zone, the phone's own.
        ("2026-11-22T13:00:00.123+03:00", datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-22T10:00:00.123Z", datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-22T05:00:00.000-05:00", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
        # Android 6 and older build the suffix by hand and write "+-5:00" west of Greenwich:
        # a date nobody can read is ignored (the report still counts, at the server's time).
        ("2026-11-22T05:00:00.000+-5:00", None),
    ],
)
async def test_the_dates_the_app_writes_are_accepted_in_states(
    tenant: httpx.AsyncClient,
    device_app: httpx.AsyncClient,
    sent_at: str,
    instant: datetime | None,
) -> None:
    device = await a_phone(tenant, device_app)
    [message_id] = await send(tenant, "+14155550123")
    await pull(device_app, device["token"], 1)
    body = state_body(
        message_id, "Sent", "+14155550123", Pending=sent_at, Processed=sent_at, Sent=sent_at
    )
    answer = await report(device_app, device["token"], body)
    assert answer.status_code == 204, answer.text
    found = await status_of(tenant, message_id)
    assert found["status"] == "sent"
    recorded = datetime.fromisoformat(found["status_times"]["sent"])
    if instant is not None:
        assert recorded == instant
    else:
        assert abs((recorded - datetime.now(UTC)).total_seconds()) < 60


# GET /message --------------------------------------------------------------------------------


async def test_a_pulled_message_reads_as_the_apps_message_class(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    [message_id] = await send(tenant, "+14155550123", text="Grüße, 1 €")
    answer = await device_app.get("/message", params={"order": "lifo"})
    assert answer.status_code == 401  # the pull is the phone's alone
    [message] = await pull(device_app, device["token"], 1)
    assert set(message) == {
        "id", "textMessage", "dataMessage", "message", "phoneNumbers", "simNumber",
        "withDeliveryReport", "isEncrypted", "priority", "validUntil", "scheduleAt", "state",
        "createdAt",
    }  # fmt: skip
    assert message["id"] == message_id
    assert isinstance(message["id"], str)
    assert len(message["id"]) <= 36
    assert message["textMessage"] == {"text": "Grüße, 1 €"}
    assert message["dataMessage"] is None
    assert message["message"] == "Grüße, 1 €"
    assert message["phoneNumbers"] == ["+14155550123"]
    assert message["simNumber"] is None or type(message["simNumber"]) is int
    assert message["simNumber"] in (None, 1, 2)
    assert message["withDeliveryReport"] is True
    assert message["isEncrypted"] is False
    assert type(message["priority"]) is int
    assert -128 <= message["priority"] <= 127  # a Kotlin Byte
    gson_date(message["validUntil"])
    assert message["scheduleAt"] is None
    assert message["state"] == "Pending"
    gson_date(message["createdAt"])


async def test_fifo_and_lifo_order_the_pull(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    ids = []
    for n in range(3):
        ids += await send(tenant, f"+1415555012{n}")
        await asyncio.sleep(0.01)  # ids are time-ordered: one millisecond apart at least
    fifo = await pull(device_app, device["token"], 3, order="fifo")
    lifo = await pull(device_app, device["token"], 3, order="lifo")
    assert [m["id"] for m in fifo] == ids
    assert [m["id"] for m in lifo] == ids[::-1]


async def test_the_pull_repeats_until_a_state_is_reported_and_pending_means_taken(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    [message_id] = await send(tenant, "+14155550123")
    first = await pull(device_app, device["token"], 1)
    assert await pull(device_app, device["token"], 1) == first
    assert await pull(device_app, device["token"], 1) == first
    # The app saved it, and its first report is the state it saved it in: Pending.
    at = "2026-11-22T13:00:00.000+03:00"
    answer = await report(
        device_app, device["token"], state_body(message_id, "Pending", "+14155550123", Pending=at)
    )
    assert answer.status_code == 204, answer.text
    assert await pull(device_app, device["token"], 0) == []  # taken, as Processed would be
    assert (await status_of(tenant, message_id))["status"] == "dispatching"


# PATCH /message ------------------------------------------------------------------------------


async def test_the_apps_full_state_reports_move_the_messages(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    ok, bad, cancelled = await send(tenant, "+14155550120", "+14155550121", "+14155550122")
    await pull(device_app, device["token"], 3)
    t0, t1, t2 = (f"2026-11-22T13:00:0{n}.250+03:00" for n in range(3))
    delivered = state_body(
        ok, "Delivered", "+14155550120", Pending=t0, Processed=t0, Sent=t1, Delivered=t2
    )
    failed = state_body(
        bad, "Failed", "+14155550121", error="RESULT_ERROR_GENERIC_FAILURE",
        Pending=t0, Processed=t0, Failed=t1,
    )  # fmt: skip
    # What GatewayService sends for a Cancelling message the phone never had.
    gone = state_body(cancelled, "Cancelled", "+14155550122", Cancelled=t1)
    unknown = state_body("nOtOnThisPhone_0123456789", "Sent", "+14155550199", Sent=t1)
    # Each as the app sends it (a list of one), then all of them in one list.
    for body in (delivered, failed, unknown):
        answer = await report(device_app, device["token"], body)
        assert answer.status_code == 204, answer.text
        assert answer.content == b""
    together = "[" + ",".join(body[1:-1] for body in (delivered, failed, gone, unknown)) + "]"
    answer = await report(device_app, device["token"], together)
    assert answer.status_code == 204, answer.text

    found = await status_of(tenant, ok)
    assert found["status"] == "delivered"
    assert datetime.fromisoformat(found["status_times"]["sent"]) == datetime(
        2026, 11, 22, 10, 0, 1, 250000, tzinfo=UTC
    )
    failure = await status_of(tenant, bad)
    assert (failure["status"], failure["error"]["message"]) == (
        "failed",
        "RESULT_ERROR_GENERIC_FAILURE",
    )
    assert (await status_of(tenant, cancelled))["status"] == "cancelled"


# The phone's other calls ---------------------------------------------------------------------


async def test_patch_device_takes_the_apps_body_and_refuses_another_id(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    mine = await a_phone(tenant, device_app)
    other = await a_phone(tenant, device_app)
    token = {**bearer(mine["token"]), **JSON}
    # SSE only: no FCM token, so no pushToken; then with one (Firebase).
    for body in (
        f'{{"id":"{mine["id"]}","simCards":{SIMS}}}',
        f'{{"id":"{mine["id"]}","pushToken":"fcm-token-2","simCards":{SIMS}}}',
    ):
        answer = await device_app.patch("/device", content=body, headers=token)
        assert answer.status_code == 204, answer.text
    theirs = await device_app.patch(
        "/device", content=f'{{"id":"{other["id"]}","simCards":{SIMS}}}', headers=token
    )
    assert theirs.status_code == 403, theirs.text
    assert list(theirs.json()) == ["message"]


async def test_get_device_answers_the_external_ip_with_or_without_a_token(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    anonymous = await device_app.get("/device")  # GatewayService.getPublicIP before registering
    assert anonymous.status_code == 200, anonymous.text
    assert list(anonymous.json()) == ["externalIp"]
    assert isinstance(anonymous.json()["externalIp"], str)
    known = await device_app.get("/device", headers=bearer(device["token"]))
    assert known.status_code == 200, known.text
    assert isinstance(known.json()["externalIp"], str)
    assert known.json()["device"]["id"] == device["id"]


async def test_settings_are_what_the_apps_importers_read(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    answer = await device_app.get("/settings", headers=bearer(device["token"]))
    assert answer.status_code == 200, answer.text
    settings = answer.json()
    # SettingsService.update casts each known section to a Map: every section is an object.
    assert all(isinstance(section, dict) for section in settings.values())
    assert set(settings) <= {"encryption", "gateway", "messages", "ping", "logs", "webhooks"}
    assert isinstance(settings["webhooks"]["signing_key"], str)
    assert settings["webhooks"]["signing_key"]
    assert type(settings["ping"]["interval_seconds"]) is int
    assert settings["ping"]["interval_seconds"] > 0  # PingSettings ignores 0 and less
    gateway = settings.get("gateway", {})
    assert gateway.get("notification_channel", "AUTO") in ("AUTO", "SSE_ONLY")
    # GatewaySettings.import refuses a cloud_url that is not https://.
    assert str(gateway.get("cloud_url", "https://")).startswith("https://")


async def test_webhooks_are_the_apps_webhook_class(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    answer = await device_app.get("/webhooks", headers=bearer(device["token"]))
    assert answer.status_code == 200, answer.text
    hooks = answer.json()
    assert hooks
    for hook in hooks:
        assert list(hook) == ["id", "url", "event"]
        assert all(isinstance(value, str) for value in hook.values())
        assert hook["event"] in APP_EVENTS
        assert hook["url"] == f"{PUBLIC_URL}{MOBILE}/hook"
    assert len({hook["id"] for hook in hooks}) == len(hooks)  # WebHooksService.sync keys by id


async def test_a_wrong_current_password_is_401(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    token = {**bearer(device["token"]), **JSON}
    wrong = await device_app.patch(
        "/user/password",
        content='{"currentPassword":"not it","newPassword":"a new password"}',
        headers=token,
    )
    assert wrong.status_code == 401, wrong.text
    assert list(wrong.json()) == ["message"]
    right = await device_app.patch(
        "/user/password",
        content=f'{{"currentPassword":"{device["password"]}","newPassword":"a new password"}}',
        headers=token,
    )
    assert right.status_code == 204, right.text


BEARER_CALLS = [
    ("GET", "/message?order=lifo", None),
    ("PATCH", "/message", "[]"),
    ("PATCH", "/device", '{"id":"abcdefghijklmnopqrstu","simCards":[]}'),
    ("GET", "/webhooks", None),
    ("GET", "/settings", None),
    ("GET", "/events", None),
    ("PATCH", "/user/password", '{"currentPassword":"a","newPassword":"b"}'),
]
BAD_AUTHORIZATION = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer tbd_not-a-device-token"},
    {"Authorization": "Basic " + base64.b64encode(b"LOGIN:password").decode()},
    {"Authorization": "Token tbd_x"},
    {"Authorization": "garbage"},
]


@pytest.mark.parametrize(("method", "path", "body"), BEARER_CALLS)
async def test_missing_or_garbage_authorization_is_401_with_a_message(
    tenant: httpx.AsyncClient,
    device_app: httpx.AsyncClient,
    method: str,
    path: str,
    body: str | None,
) -> None:
    await a_phone(tenant, device_app)
    for authorization in BAD_AUTHORIZATION:
        headers = {**authorization, **(JSON if body is not None else {})}
        answer = await device_app.request(method, path, content=body, headers=headers)
        assert answer.status_code == 401, (authorization, answer.text)
        assert list(answer.json()) == ["message"], answer.text
    # GET /device takes no token, but a garbage one is refused like everywhere else.
    garbage = await device_app.get("/device", headers=bearer("tbd_not-a-device-token"))
    assert garbage.status_code == 401
    assert list(garbage.json()) == ["message"]
    code = await device_app.get("/user/code", headers={"Authorization": "Basic !!"})
    assert code.status_code == 401
    assert list(code.json()) == ["message"]


# Malformed bodies --------------------------------------------------------------------------

MALFORMED = [
    # (method, path, body, a word the message must contain)
    ("POST", "/device", '{"name":"x","simCards":[', "JSON"),
    ("POST", "/device", "", "body"),
    ("POST", "/device", "[]", "object"),
    ("POST", "/device", '{"pushToken":null,"simCards":[]}', "name"),
    ("POST", "/device", '{"name":5,"simCards":[]}', "name"),
    ("POST", "/device", '{"name":"x","simCards":{}}', "simCards"),
    ("POST", "/device", '{"name":"x","simCards":[{"slotIndex":0,"simNumber":"one"}]}',
     "simCards[0].simNumber"),
    ("POST", "/device", '{"name":"x","pushToken":7}', "pushToken"),
    ("PATCH", "/device", '{"id":', "JSON"),
    ("PATCH", "/device", '{"pushToken":null}', "id"),
    ("PATCH", "/device", '{"id":"x","simCards":"none"}', "simCards"),
    ("PATCH", "/message", '[{"id":"x","state":"Sent"', "JSON"),
    ("PATCH", "/message", '{"id":"x","state":"Sent"}', "list"),
    ("PATCH", "/message", '[{"state":"Sent"}]', "[0].id"),
    ("PATCH", "/message", '[{"id":"x","state":"Exploded"}]', "[0].state"),
    ("PATCH", "/message", '[{"id":"x","state":"Sent","recipients":"all"}]', "[0].recipients"),
    ("PATCH", "/message", '[{"id":"x","state":"Sent","states":{"Sent":1}}]', "[0].states"),
    ("PATCH", "/message", '[{"id":"x","state":"Sent","recipients":[{"state":"Sent"}]}]',
     "[0].recipients[0].phoneNumber"),
    ("PATCH", "/user/password", '{"currentPassword":', "JSON"),
    ("PATCH", "/user/password", '{"currentPassword":"a"}', "newPassword"),
    ("PATCH", "/user/password", '{"currentPassword":1,"newPassword":"b"}', "currentPassword"),
]  # fmt: skip


async def test_a_malformed_body_is_400_naming_the_field(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    """Every case on one app (a case is a request, not a setup)."""
    device = await a_phone(tenant, device_app)
    pairing = await paired(tenant)
    for method, path, body, named in MALFORMED:
        token = pairing["token"] if path == "/device" and method == "POST" else device["token"]
        headers = {**bearer(token), **JSON}
        answer = await device_app.request(method, path, content=body, headers=headers)
        case = (method, path, body)
        assert answer.status_code == 400, (case, answer.text)
        assert list(answer.json()) == ["message"], (case, answer.text)
        assert named in answer.json()["message"], (case, answer.text)
    assert len((await tenant.get("/v1/devices")).json()) == 1  # nothing registered


async def test_a_malformed_event_from_the_phone_is_400_with_a_message(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    for body in (b'{"id":"e","event":', b"[]", b'{"event":"sms:received"}'):
        answer = await device_app.post("/hook", content=body, headers=JSON)
        assert answer.status_code == 400, answer.text
        assert list(answer.json()) == ["message"]


# Numbers without + -------------------------------------------------------------------------


async def event(
    app: httpx.AsyncClient, device: dict[str, Any], key: str, payload: str, event_id: str
) -> httpx.Response:
    """What SendWebhookWorker posts: WebHookEventDTO(id, webhookId, event, deviceId, payload),
    signed by PayloadSingingPlugin with hex HMAC-SHA256(key bytes, body text + timestamp)."""
    body = (
        f'{{"id":"{event_id}","webhookId":"textbridge-sms-received","event":"sms:received",'
        f'"deviceId":"{device["id"]}","payload":{payload}}}'
    ).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(key.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    return await app.post(
        "/hook",
        content=body,
        headers={**JSON, "X-Timestamp": stamp, "X-Signature": signature},
    )


def received(sender: str, recipient: str | None, message_id: str) -> str:
    """``SmsEventPayload.SmsReceived`` as Gson writes it: its own fields first (message,
    receivedAt), then MessageEventPayload's, ``recipient`` left out when Android has none."""
    to = "" if recipient is None else f'"recipient":"{recipient}",'
    return (
        f'{{"message":"Hi from {sender}","receivedAt":"2026-11-22T13:00:00.000+03:00",'
        f'"messageId":"{message_id}","sender":"{sender}",{to}"simNumber":1,'
        f'"phoneNumber":"{sender}"}}'
    )


async def test_a_number_without_plus_is_international_on_the_way_out(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    [message_id] = await send(tenant, "14155550123")  # as TextBoost writes numbers
    [message] = await pull(device_app, device["token"], 1)
    assert (message["id"], message["phoneNumbers"]) == (message_id, ["+14155550123"])
    # There is no default country: a national number is refused, not guessed.
    national = await tenant.post("/v1/messages", json={"to": ["4155550123"], "text": "Hi"})
    assert national.status_code == 400, national.text
    assert national.json()["error"]["field"].startswith("to")


@pytest.mark.parametrize(
    ("sender", "recipient", "conversation"),
    [
        ("+14155550123", "+14155550000", "+14155550123"),
        ("14155550123", "+14155550000", "+14155550123"),  # international, no +
        ("14155550123", None, "+14155550123"),  # Android knows no number for the SIM
        # National, as the network may hand it over: read in the receiving SIM's country.
        ("4155550123", "+14155550000", "+14155550123"),
        ("(415) 555-0123", "+14155550000", "+14155550123"),
        ("0690156360", "+381690000000", "+381690156360"),
        # The SIM's own number in a form we cannot read costs nothing but that number.
        ("+14155550123", "4155550000", "+14155550123"),
        ("+14155550123", "", "+14155550123"),
        # A sender's name is no number, not even read on a keypad: dropped (and not retried).
        ("415SHOPNOW", "+14155550000", None),
    ],
)
async def test_a_received_sms_from_a_number_without_plus_is_stored(
    tenant: httpx.AsyncClient,
    device_app: httpx.AsyncClient,
    sender: str,
    recipient: str | None,
    conversation: str | None,
) -> None:
    device = await a_phone(tenant, device_app)
    settings = (await device_app.get("/settings", headers=bearer(device["token"]))).json()
    key = settings["webhooks"]["signing_key"]
    for _ in range(2):  # the phone retries until a 2xx: stored once
        answer = await event(device_app, device, key, received(sender, recipient, "1a2b3c"), "e1")
        assert answer.status_code == 204, answer.text
    conversations = (await tenant.get("/v1/conversations")).json()["data"]
    if conversation is None:
        assert conversations == []
        return
    assert [c["phone"] for c in conversations] == [conversation]
    thread = (await tenant.get(f"/v1/conversations/{conversation}/messages")).json()["data"]
    assert [(m["direction"], m["text"]) for m in thread] == [("in", f"Hi from {sender}")]


async def test_the_signed_body_is_checked_as_sent(
    tenant: httpx.AsyncClient, device_app: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant, device_app)
    settings = (await device_app.get("/settings", headers=bearer(device["token"]))).json()
    key = settings["webhooks"]["signing_key"]
    body = orjson.dumps({"id": "e", "event": "sms:received", "deviceId": device["id"]})
    stamp = str(int(time.time()))
    # Signed over the timestamp first (the other order) is not the app's signature.
    wrong = hmac.new(key.encode(), stamp.encode() + body, hashlib.sha256).hexdigest()
    answer = await device_app.post(
        "/hook", content=body, headers={**JSON, "X-Timestamp": stamp, "X-Signature": wrong}
    )
    assert answer.status_code == 401
    assert list(answer.json()) == ["message"]
