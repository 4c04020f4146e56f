"""A real ``textbridge serve`` process on 127.0.0.1, for tests where the wire and the process
boundary matter (crash recovery, the CLI)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY
from tests.eventually import eventually_sync


class ServerProcess:
    def __init__(
        self,
        *,
        port: int,
        data_dir: Path,
        database_url: str,
        command: str = "serve",
        args: Sequence[str] = (),
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
        **settings: Any,
    ) -> None:
        self.command = command
        self.args = list(args)  # more command-line options, e.g. --tls-cert and --tls-key
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.verify = verify  # for https: the context that trusts the server's CA
        self.log = data_dir / f"server-{port}-{time.monotonic_ns()}.log"
        self.env = {
            **os.environ,
            "TEXTBRIDGE_PORT": str(port),
            "TEXTBRIDGE_DATA_DIR": str(data_dir),
            "TEXTBRIDGE_DATABASE_URL": database_url,
            "TEXTBRIDGE_ADMIN_API_KEY": ADMIN_KEY,
            "TEXTBRIDGE_SECRET_KEY": "test-secret-key-not-for-production",
        }
        self.env.update({f"TEXTBRIDGE_{k.upper()}": str(v) for k, v in settings.items()})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ServerProcess:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "textbridge", self.command, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            if self.command == "worker":
                return "worker running" in self.log.read_text()
            try:
                health = httpx.get(f"{self.url}/health", timeout=1, verify=self.verify)
            except httpx.TransportError:
                return False
            return health.status_code == 200

        try:
            eventually_sync(up, within=timeout, interval=0.1)
        except AssertionError:
            raise RuntimeError(f"server did not start: {self.log.read_text()}") from None
        return self

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            verify=self.verify,
        )

    def tenant(self) -> httpx.Client:
        """A client of a new account: its phones and messages are its own, whatever other
        tests left in the session's database."""
        with self.client() as admin:
            answer = admin.post(
                "/v1/accounts", json={"name": f"tenant-{uuid.uuid4().hex[:12]}", "balance": 10_000}
            )
            answer.raise_for_status()
        return self.client(answer.json()["api_key"])

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
