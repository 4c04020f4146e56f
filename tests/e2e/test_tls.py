"""Serving phones over https with a private CA, as the README's LAN setup does: scripts/lan-cert
makes the CA once and a certificate for the names given; ``textbridge serve --tls-cert
--tls-key`` serves https that only a client trusting that CA accepts; a real ``textbridge
agent --ca-cert`` registers over it and delivers; half of the TLS options is a usage error."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync
from textbridge.cli import app

pytestmark = pytest.mark.slow

LAN_CERT = Path(__file__).parents[2] / "scripts" / "lan-cert"


def lan_cert(out: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAN_CERT, "--out", str(out), *names], capture_output=True, text=True, check=False
    )


def x509_text(pem: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_lan_cert_makes_the_ca_once_and_a_certificate_per_run(tmp_path: Path) -> None:
    first = lan_cert(tmp_path, "127.0.0.1", "localhost")
    assert first.returncode == 0, first.stderr
    assert "--tls-cert" in first.stdout
    assert "ca.pem" in first.stdout
    for name, mode in (("ca.key", 0o600), ("server.key", 0o600), ("ca.pem", 0o644)):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    ca, server = x509_text(tmp_path / "ca.pem"), x509_text(tmp_path / "server.pem")
    assert "CA:TRUE" in ca
    assert "Certificate Sign, CRL Sign" in ca
    assert "IP Address:127.0.0.1, DNS:localhost" in server
    assert "TLS Web Server Authentication" in server

    ca_pem = (tmp_path / "ca.pem").read_bytes()
    again = lan_cert(tmp_path, "192.168.1.10")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ca.pem").read_bytes() == ca_pem  # phones that trust it keep trusting
    renewed = x509_text(tmp_path / "server.pem")
    assert renewed != server
    assert "IP Address:192.168.1.10" in renewed
    checked = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "server.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    refused = lan_cert(tmp_path / "other")
    assert refused.returncode != 0
    assert "no names" in refused.stderr


def test_an_agent_delivers_over_https_with_the_private_ca(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    tls = tmp_path / "tls"
    assert lan_cert(tls, "127.0.0.1", "localhost").returncode == 0
    trust = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    server = ServerProcess(
        port=free_port(),
        data_dir=tmp_path,
        database_url=database_url,
        args=["--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key")],
        scheme="https",
        verify=trust,
        dispatch_poll_seconds=0.1,
        device_keepalive_seconds=1,
    ).start()
    agent: subprocess.Popen[bytes] | None = None
    try:
        assert "serving https://" in server.log.read_text()
        assert httpx.get(f"{server.url}/health", verify=trust).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/health")  # the system's CAs do not know ours
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{server.port}/health")

        with server.tenant() as client:
            token = client.post("/v1/devices/pairing").json()["token"]
            with (tmp_path / "agent.log").open("wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "textbridge", "agent", "--server", server.url,
                     "--token", token, "--ca-cert", str(tls / "ca.pem"),
                     "--state", str(tmp_path / "agent.json"), "--poll-seconds", "1",
                     "--send-delay-ms", "5"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "TEXTBRIDGE_DATA_DIR": str(tmp_path)},
                )  # fmt: skip
            eventually_sync(lambda: len(client.get("/v1/devices").json()) == 1, within=30)
            sent = client.post("/v1/messages", json={"to": "+14155550100", "text": "over tls"})
            assert sent.status_code == 202, sent.text
            url = f"/v1/messages/{sent.json()['messages'][0]['id']}"

            def delivered() -> bool:
                status = client.get(url).json()["status"]
                assert status == "delivered", (
                    f"{status} (logs: {tmp_path / 'agent.log'}, {server.log})"
                )
                return True

            eventually_sync(delivered, within=30)
            assert client.get(url).json()["device_id"] is not None  # the phone, not the simulator
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(timeout=10)
        server.stop()


def test_half_of_the_tls_options_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"TEXTBRIDGE_TLS_CERT": None, "TEXTBRIDGE_TLS_KEY": None}
    half = runner.invoke(app, ["serve", "--tls-cert", str(tmp_path / "x")], env=env)
    assert half.exit_code == 2
    assert "--tls-key" in half.output
    assert "--tls-cert" in half.output
    missing = tmp_path / "missing.pem"
    unreadable = runner.invoke(
        app, ["serve", "--tls-cert", str(missing), "--tls-key", str(missing)], env=env
    )
    assert unreadable.exit_code == 2
    assert "cannot read" in unreadable.output
