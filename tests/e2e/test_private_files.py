"""The data folder holds the server secret, the admin's key and, on SQLite, the database with
webhook secrets and phones' signing keys: only its owner may read it. The folder is mode 700
and every file Textbridge writes in it 600, whether it made them now or an older version did
(755 and 644)."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from tests.conftest import client_of, make_settings
from tests.e2e.server import ServerProcess

SEND = {"to": "+14155550100", "text": "hi"}
OURS = ["admin-api-key", "secret-key", "textbridge.db", "textbridge.db-shm", "textbridge.db-wal"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """The folder's mode (as ``.``) and those of Textbridge's files in it."""
    return {".": mode(folder)} | {name: mode(folder / name) for name in OURS}


PRIVATE = {".": 0o700} | dict.fromkeys(OURS, 0o600)


async def test_a_new_data_folder_and_its_files_are_the_owners_alone(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    settings = make_settings("", data, auto_migrate=True, secret_key=None)
    async with client_of(settings) as client:
        assert (await client.post("/v1/messages", json=SEND)).status_code == 202
        assert sorted(path.name for path in data.iterdir()) == OURS
        assert modes(data) == PRIVATE


def test_an_older_data_folder_is_made_private_at_start(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "textbridge.db"
    sqlite3.connect(database).close()
    (data / "admin-api-key").write_text("tb_old_key\n")
    for path, old in ((data, 0o755), (database, 0o644), (data / "admin-api-key", 0o644)):
        path.chmod(old)
    server = ServerProcess(
        port=free_port(),
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{database}",
        secret_key="",  # generated into the folder
    ).start()
    try:
        with server.client() as client:
            assert client.post("/v1/messages", json=SEND).status_code == 202
        assert modes(data) == PRIVATE
    finally:
        server.stop()
    assert "made a data file private" in server.log.read_text()
