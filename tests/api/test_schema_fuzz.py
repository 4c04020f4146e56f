"""Property-based requests from our own OpenAPI description, against a real server on each
database: whatever schemathesis makes up, the answer is never a 500 (a 500 is always a bug).

Every route is called, the ones the description leaves out too (each dialect's ``/api``
aliases, TextBoost's ``/http/`` spellings): each as a copy of the operation it shares its
endpoint with. Half the cases name real resources (a contact, a phone and its SIMs, a
webhook...) instead of made-up ids, and half put a real number in the fields that hold one,
so they reach past the 404 or the first check; half have a lone UTF-16 surrogate in one string
of the body, which schemathesis never draws on its own."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import routing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from textbridge.api.app import create_app
from textbridge.settings import Settings

pytestmark = pytest.mark.slow

PHONE = "+14155550123"
NUMBERS = {  # the fields that hold a number, in every dialect, with a real one
    "to": PHONE,
    "phone": PHONE,
    "phone_number": PHONE,
    "phone_numbers": [PHONE],
    "recipient": PHONE,
}


@dataclass(frozen=True)
class Live:
    server: ServerProcess
    schema: schemathesis.BaseSchema
    ids: dict[str, str]  # a real value for each path parameter of this name
    device_token: str


@pytest.fixture(scope="module")
def live(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(
        port=free_port(),
        data_dir=data_dir,
        database_url=database_url,
        simulator_delivery_delay_ms=10,
        webhook_allow_private=True,
    ).start()
    try:
        with server.client() as admin:
            ids, device_token = _resources(admin)
            schema = _every_route(admin.get("/openapi.json").json(), data_dir)
        yield Live(server, schema, ids, device_token)
    finally:
        server.stop()
        assert "Traceback" not in server.log.read_text(), server.log.read_text()


def _every_route(served: dict[str, Any], data_dir: Path) -> schemathesis.BaseSchema:
    """The served description, with each route it hides added as a copy of the operation of
    the route it shares an endpoint with."""
    app = create_app(Settings(data_dir=data_dir))  # the server's routes, read in this process
    contexts = list(routing.iter_route_contexts(app.routes))
    shown = {
        (context.endpoint, method): context.path_format
        for context in contexts
        if context.include_in_schema
        for method in context.methods or ()
    }
    for context in contexts:
        for method in context.methods or ():
            twin = shown.get((context.endpoint, method))
            if context.include_in_schema or twin is None or method == "HEAD":
                continue
            operation = copy.deepcopy(served["paths"][twin][method.lower()])
            operation["operationId"] += f"_alias{context.path_format}".replace("/", "_")
            served["paths"].setdefault(context.path_format, {})[method.lower()] = operation
    return schemathesis.openapi.from_dict(served)


def _resources(admin: httpx.Client) -> tuple[dict[str, str], str]:
    def made(path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        answer = admin.post(path, json=body, **kwargs)
        assert answer.status_code < 300, answer.text
        made: dict[str, Any] = answer.json()
        return made

    contact = made("/v1/contacts", {"phone": PHONE, "first_name": "Ana", "tag": "t"})["id"]
    group = made("/v1/groups", {"name": "fuzz"})["id"]
    message = made("/v1/messages", {"to": PHONE, "text": "hi"})["messages"][0]["id"]
    bulk = made("/v1/bulk-jobs", {"to": [PHONE], "text": "hi"})["id"]
    verification = made("/v1/verifications", {"phone": PHONE})["id"]
    webhook = made(
        "/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["message.delivered"]}
    )["id"]
    account = made("/v1/accounts", {"name": "fuzz", "balance": 10})["id"]
    pairing = made("/v1/devices/pairing", {})["token"]
    sims = [{"simNumber": 1, "carrierName": "T"}, {"simNumber": 2}]
    device = made(
        "/api/mobile/v1/device",
        {"name": "phone", "pushToken": None, "simCards": sims},
        headers={"Authorization": f"Bearer {pairing}"},
    )
    sim = admin.get("/v1/sim-cards").json()[0]["id"]
    ids = {
        "contact_id": contact,
        "group_id": group,
        "message_id": message,
        "job_id": bulk,
        "verification_id": verification,
        "webhook_id": webhook,
        "account_id": account,
        "device_id": device["id"],
        "sim_card_id": str(sim),
        "phone": PHONE,
        "country": "US",
    }
    return ids, device["token"]


def _poisoned(body: dict[str, Any] | list[Any], pick: int) -> dict[str, Any] | list[Any]:
    """``body`` with a lone surrogate at the end of one of its strings (the pick-th)."""
    leaves: list[tuple[Any, Any]] = []  # (container, key) of every string
    pending: list[Any] = [body]
    while pending:
        value = pending.pop()
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(item, str):
                leaves.append((value, key))
            elif isinstance(item, dict | list):
                pending.append(item)
    if leaves:
        container, key = leaves[pick % len(leaves)]
        container[key] += "\ud800"
    return body


def test_no_request_gets_a_server_error(live: Live) -> None:
    # Driven by hand rather than by schemathesis's pytest plugin, which does not load under
    # this pytest. The phone's own calls (which replace its SIMs) and deletions last, so the
    # resources are there for the rest.
    operations = sorted(
        (result.ok() for result in live.schema.get_all_operations()),
        key=lambda operation: (
            operation.method.upper() == "DELETE",
            operation.path.startswith("/api/mobile/"),
            operation.path,
        ),
    )
    assert len(operations) >= 150
    http = requests.Session()
    for operation in operations:

        @given(case=operation.as_strategy(), data=st.data())
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case, data: st.DataObject) -> None:
            key = ADMIN_KEY
            if data.draw(st.booleans(), label="real resources"):
                for name in case.path_parameters or {}:
                    if name == "uid":
                        case.path_parameters[name] = live.ids[
                            "contact_id" if "/contacts/" in case.path else "message_id"
                        ]
                    elif name in live.ids:
                        case.path_parameters[name] = live.ids[name]
                if case.path.startswith("/api/mobile/"):
                    key = live.device_token
            request = case.as_transport_kwargs(
                base_url=live.server.url, headers={"Authorization": f"Bearer {key}"}
            )
            body = request.get("json")
            if isinstance(body, dict) and data.draw(st.booleans(), label="real numbers"):
                # A made-up number stops a send or a contact at its first check.
                request["json"] = {**body, **{k: v for k, v in NUMBERS.items() if k in body}}
            # Sent by hand, as schemathesis refuses to handle a body with a lone surrogate
            # (requests writes it as the JSON escape \ud800).
            if isinstance(request.get("json"), dict | list) and data.draw(st.booleans()):
                pick = data.draw(st.integers(0, 50), label="poisoned string")
                request["json"] = _poisoned(copy.deepcopy(request["json"]), pick)
            # Streamed: an answer that is an event stream (a phone's) never ends.
            with http.request(**request, timeout=30, stream=True) as response:
                assert response.status_code < 500, (
                    f"{case.method} {request['url']} {request.get('json')!r}: "
                    f"{response.status_code} {response.text}"
                )

        check()
