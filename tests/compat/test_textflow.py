"""TextFlow's send-sms, with the seed's bodies and answers (``shared/seeds/textflow-api.md``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from tests.eventually import eventually


async def test_send_sms_answers_the_documented_shape(client: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    answer = await client.post(
        "/textflow/api/send-sms",
        json={"phone_number": "+381690156360", "text": "Dummy message text..."},
    )
    assert answer.status_code == 200
    body = answer.json()
    timestamp = body["data"].pop("timestamp")
    assert before <= timestamp <= int(time.time() * 1000)
    assert body == {
        "ok": True,
        "status": 200,
        "message": "Message sent successfully",
        "data": {
            "to": "+381690156360",
            "content": "Dummy message text...",
            "country_code": "Serbia",
            "price": 0.15,
        },
    }


async def test_invalid_api_key_is_the_documented_400(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": ""}):
        answer = await client.post(
            "/textflow/api/send-sms",
            json={"phone_number": "+381690156360", "text": "x"},
            headers=headers,
        )
        assert answer.status_code == 400
        assert answer.json() == {"ok": False, "status": 400, "message": "Invalid API key"}


@pytest.mark.parametrize("number", ["+1", "hello", "+3816901563601234", "", "+99912345678"])
async def test_invalid_phone_number_is_the_documented_400(
    client: httpx.AsyncClient, number: str
) -> None:
    answer = await client.post("/textflow/api/send-sms", json={"phone_number": number, "text": "x"})
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "status": 400, "message": "Phone number is invalid"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"text": "x"}, "phone_number is required"),
        ({"phone_number": "+381690156360"}, "text is required"),
        ({"phone_number": ["+381690156360"], "text": "x"}, "Phone number is invalid"),
        ({"phone_number": "+381690156360", "text": "x" * 1601}, "1601 characters"),
        ({"phone_number": "+381690156360", "text": 5}, "text"),
    ],
)
async def test_other_bad_input_keeps_the_shape(
    client: httpx.AsyncClient, body: dict[str, object], says: str
) -> None:
    answer = await client.post("/textflow/api/send-sms", json=body)
    assert answer.status_code == 400
    assert answer.json()["ok"] is False
    assert answer.json()["status"] == 400
    assert says in answer.json()["message"]
    assert (await client.get("/v1/messages")).json()["data"] == []


async def test_bulk_sms_starts_a_job_and_bulk_count_follows_it(
    client: httpx.AsyncClient,
) -> None:
    numbers = [f"+1415500{i:04d}" for i in range(300)]
    answer = await client.post(
        "/textflow/api/bulk-sms", json={"phone_numbers": numbers, "text": "Campaign"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "ok": True,
        "userId": body["userId"],
        "status": 200,
        "message": "Bulk SMS sending started",
    }
    [job] = (await client.get("/v1/bulk-jobs")).json()["data"]
    assert (job["source"], job["total"]) == ("textflow", 300)

    async def all_counted() -> bool:
        counted = (await client.post("/textflow/api/bulk-count")).json()
        assert set(counted) == {"ok", "count", "status", "message"}
        assert counted["message"] == "Bulk messages successfully counted"
        assert counted["count"] == 0, counted
        return True

    await eventually(all_counted, within=30, interval=0.1)
    job = (await client.get(f"/v1/bulk-jobs/{job['id']}")).json()
    assert job["pending"] == 0
    assert sum(job["by_status"].values()) == 300


async def test_bulk_sms_refuses_the_whole_job_for_one_bad_number(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/textflow/api/bulk-sms",
        json={"phone_numbers": ["+14155000001", "+1", "+14155000002"], "text": "x"},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "ok": False,
        "status": 400,
        "message": "Phone number is invalid (phone_numbers[1])",
    }
    assert (await client.get("/v1/bulk-jobs")).json()["data"] == []
    answer = await client.post("/textflow/api/bulk-sms", json={"phone_numbers": [], "text": "x"})
    assert answer.status_code == 400
    assert answer.json()["ok"] is False


def test_the_published_python_client_works_unchanged(
    live_server: Callable[..., ServerProcess], redirect: Callable[[str, str], None]
) -> None:
    """``textflowsms`` from PyPI (TextFlow's own client), unchanged, against a real server set
    up as a TextFlow user would: ``TEXTBRIDGE_ROOT_DIALECT=textflow``, and only the host
    changes."""
    import textflowsms as tf

    server = live_server(root_dialect="textflow")
    redirect("https://textflow.me", server.url)
    tf.useKey(ADMIN_KEY)
    result = tf.sendSMS("+381690156360", "Dummy message text...")
    assert (result.ok, result.status, result.message) == (True, 200, "Message sent successfully")
    assert (result.data.to, result.data.country_code, result.data.price) == (
        "+381690156360",
        "Serbia",
        0.15,
    )
    refused = tf.sendSMS("+1", "x")
    assert (refused.ok, refused.status, refused.message) == (False, 400, "Phone number is invalid")
    tf.useKey("tb_not_a_key_at_all_000000")
    refused = tf.sendSMS("+381690156360", "x")
    assert (refused.ok, refused.message) == (False, "Invalid API key")
