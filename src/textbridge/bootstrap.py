"""First start: the schema, the admin account with its key, and the default price table."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError

from textbridge.accounts.service import accounts
from textbridge.billing.service import billing
from textbridge.db import Database
from textbridge.db.migrate import upgrade
from textbridge.kit.money import to_micros
from textbridge.settings import Settings, make_private_dir, write_private_file

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    admin_created: bool
    generated_admin_key: str | None  # only when we made one up: print it once


async def migrate(db: Database) -> None:
    async with db.unbounded() as engine:
        await upgrade(engine)


async def bootstrap(db: Database, settings: Settings) -> Bootstrapped:
    """Idempotent: safe to run at every start, from several processes at once."""
    make_private_dir(settings.data_dir)
    settings.resolved_secret_key  # noqa: B018  (generate and keep it now, not mid-request)
    try:
        async with db.transaction() as session:
            await billing.ensure_default_prices(session)
            admin = await accounts.get_admin(session)
            if admin is not None:
                preset = settings.admin_api_key
                if preset and not await accounts.key_exists(session, preset):
                    await accounts.create_key(
                        session, account_id=admin.id, name="preset", raw_key=preset
                    )
                return Bootstrapped(False, None)
            admin, raw_key = await accounts.create(
                session,
                name=settings.admin_account_name,
                parent_id=None,
                is_admin=True,
                raw_key=settings.admin_api_key,
            )
            await accounts.mint(session, admin, to_micros(settings.admin_initial_balance))
    except IntegrityError:
        # Another process bootstrapped at the same moment; what it made is what we wanted.
        log.info("bootstrap raced another process; using its work")
        return Bootstrapped(False, None)
    write_private_file(settings.data_dir / "admin-api-key", raw_key + "\n")
    generated = None if settings.admin_api_key else raw_key
    return Bootstrapped(True, generated)
