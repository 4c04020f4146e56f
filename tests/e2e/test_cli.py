"""The README's path for a new user, through the ``textbridge`` command and a real server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from textbridge.db import Database

pytestmark = pytest.mark.slow


def textbridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "textbridge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_first_start_send_and_admin_commands(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(),
        data_dir=tmp_path,
        database_url=database_url,
        simulator_delivery_delay_ms=50,
    )
    env = {**server.env, "TEXTBRIDGE_API_KEY": ""}
    # The first start makes the admin account; its (preset) key lands in the data folder, 600.
    server.start()
    try:
        key_file = tmp_path / "admin-api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip() == server.env["TEXTBRIDGE_ADMIN_API_KEY"]

        sent = textbridge(
            "send",
            "--to",
            "+14155550100",
            "--text",
            "hello",
            "--wait",
            "--url",
            server.url,
            env=env,
        )
        assert sent.returncode == 0, sent.stderr
        message = json.loads(sent.stdout)
        assert message["status"] == "delivered"
        assert set(message["status_times"]) >= {"accepted", "queued", "sent", "delivered"}

        created = textbridge("accounts", "create", "shop", "--balance", "25", env=env)
        assert created.returncode == 0, created.stderr
        shop = json.loads(created.stdout)
        new_key = textbridge("keys", "create", "--account", "shop", env=env)
        assert new_key.returncode == 0, new_key.stderr
        for key in (shop["api_key"], new_key.stdout.strip()):
            with server.client(key) as client:
                account = client.get("/v1/account").json()
            assert (account["name"], account["balance"]) == ("shop", 25)

        inbound = textbridge(
            "simulate",
            "inbound",
            "--from",
            "+381690156360",
            "--text",
            "STOP",
            "--url",
            server.url,
            env=env,
        )
        assert inbound.returncode == 0, inbound.stderr
        received = json.loads(inbound.stdout)
        assert (received["direction"], received["status"], received["from"]) == (
            "in",
            "received",
            "+381690156360",
        )
        # The STOP opted the phone out: a message to it fails at once, unsent and free.
        refused = textbridge(
            "send",
            "--to",
            "+381690156360",
            "--text",
            "sale",
            "--wait",
            "--url",
            server.url,
            env=env,
        )
        assert refused.returncode == 0, refused.stderr
        refused_message = json.loads(refused.stdout)
        assert (refused_message["status"], refused_message["error"]["code"]) == (
            "failed",
            "opted_out",
        )
        assert (refused_message["price"], "sent" in refused_message["status_times"]) == (0, False)

        unknown = textbridge("keys", "create", "--account", "nobody", env=env)
        assert unknown.returncode == 1
        assert "nobody" in unknown.stderr
        bad = textbridge("send", "--to", "12", "--text", "x", "--url", server.url, env=env)
        assert bad.returncode == 1
        assert json.loads(bad.stdout)["error"]["field"] == "to"
    finally:
        server.stop()
    # Keys are never logged, not even by the requests that failed.
    log = server.log.read_text()
    for secret in (server.env["TEXTBRIDGE_ADMIN_API_KEY"], shop["api_key"]):
        assert secret not in log


def test_first_start_without_a_preset_key_prints_it_once(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTBRIDGE_")}
    env["TEXTBRIDGE_DATA_DIR"] = str(tmp_path)
    env["TEXTBRIDGE_PORT"] = str(free_port())
    server = ServerProcess(port=int(env["TEXTBRIDGE_PORT"]), data_dir=tmp_path, database_url="")
    server.env = env
    server.start()
    server.stop()
    key = (tmp_path / "admin-api-key").read_text().strip()
    assert key.startswith("tb_")
    assert server.log.read_text().count(key) == 1
    assert (tmp_path / "textbridge.db").exists()
    # A second start finds the admin and prints no key.
    again = ServerProcess(port=int(env["TEXTBRIDGE_PORT"]), data_dir=tmp_path, database_url="")
    again.env = env
    again.start()
    again.stop()
    assert key not in again.log.read_text()
