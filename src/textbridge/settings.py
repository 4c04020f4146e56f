"""One typed settings object, read from the environment (prefix ``TEXTBRIDGE_``)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Role(StrEnum):
    """What a ``textbridge serve`` process runs."""

    ALL = "all"
    API = "api"
    WORKER = "worker"


class Dialect(StrEnum):
    """An API Textbridge speaks besides its own (see docs/compatibility.md)."""

    TEXTLINK = "textlink"
    TEXTFLOW = "textflow"


class Environment(StrEnum):
    """The profile (``TEXTBRIDGE_ENV``). Development, the default: the simulator takes what
    has no real route, logs are for people. Production: no simulator unless
    ``SIMULATOR_ENABLED``, a placeholder ``SECRET_KEY`` is refused, logs are JSON lines."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


_PLACEHOLDER_SECRETS = frozenset({"changeme", "secret", "change-me", "placeholder"})


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465
    NONE = "none"  # a relay on this host only


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEXTBRIDGE_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or networks,
    # comma-separated ("127.0.0.1,10.0.0.0/8"), or "*". Empty: none, so a client's address is
    # the peer's, whatever headers it sends (the per-address limits key on it).
    trusted_proxies: str = ""
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path(".textbridge")
    database_url: str | None = None
    # The longest a request waits on the database (a pooled connection, a connection, a
    # statement's answer, SQLite's write lock) before it answers 503 with Retry-After.
    database_timeout_seconds: float = Field(default=5.0, gt=0)
    admin_api_key: str | None = None
    secret_key: str | None = None
    role: Role = Role.ALL
    log_level: str = "info"
    auto_migrate: bool = True
    # Also serve this dialect at /api/..., so a client only changes its host.
    root_dialect: Dialect = Dialect.TEXTLINK

    # Accounts and money.
    admin_account_name: str = "admin"
    admin_initial_balance: float = Field(default=1_000_000, ge=0)
    currency: str = "USD"

    # Messages.
    max_text_length: int = Field(default=1600, ge=1)
    max_recipients: int = Field(default=1000, ge=1)
    max_bulk_recipients: int = Field(default=100_000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    default_ttl_seconds: int = Field(default=72 * 3600, ge=1)
    max_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    max_schedule_days: int = Field(default=365, ge=1)

    # /metrics answers a scraper sending this as its bearer token (Prometheus's
    # ``authorization: credentials``); unset, it answers no one (its counts span all accounts).
    metrics_token: str | None = None

    # Webhooks.
    webhook_allow_private: bool = False  # deliver to private, loopback, link-local addresses
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_age_seconds: int = Field(default=24 * 3600, ge=1)  # then the delivery fails
    webhook_disable_after: int = Field(default=50, ge=1)  # deliveries failed in a row
    webhook_batch_size: int = Field(default=100, ge=1)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)

    # Serve https with this certificate (PEM, its chain after it) and its key; both or neither.
    # Phones need https (scripts/lan-cert makes a private CA and a certificate for a LAN).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    # Serving: a request must arrive in time, so clients that trickle it cannot hold
    # connections (and file descriptors) for ever. Its headers within this time of its first
    # byte (or of the connection), its body within BODY_TIMEOUT_SECONDS plus a second per
    # BODY_MIN_RATE bytes received (a large upload on a slow link goes on). At most
    # MAX_CONNECTIONS open at once (never more than 80% of the open-file limit); beyond it a
    # new connection is answered 503 and closed (api/protocol.py).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    body_min_rate: int = Field(default=500, ge=0)  # bytes per second; 0: no extension
    max_connections: int = Field(default=1000, ge=1)

    # Devices (phones speaking the SMSGate protocol).
    # Where phones reach this server (https://host:port), for the URLs it gives them; by
    # default the address the phone used.
    public_url: str | None = None
    device_ping_seconds: int = Field(default=60, ge=10)  # the app pings this often
    device_online_seconds: int = Field(default=300, ge=10)  # seen this recently: online
    # A message given to a phone and not taken this long after that (or after the phone's
    # last pull that showed it) goes to another SIM ...
    device_take_seconds: int = Field(default=300, ge=1)
    # ... and one it took, once the phone has reported nothing for that long (it died): each
    # report renews its holds, so a phone still working through a long queue keeps them.
    device_send_seconds: int = Field(default=900, ge=1)
    device_keepalive_seconds: float = Field(default=15, gt=0)  # SSE comments, as the app expects
    # Failed registrations and code requests per client address, and per account once a
    # login names it.
    device_auth_limit: str = "10/minute;50/hour"
    # Failed one-time codes from all addresses together: a code names no account until it
    # matches, so this bounds every guesser (codes are 15 digits; see devices/service.py).
    device_code_failure_limit: str = "600/minute"

    # Email notices (a webhook delivery that failed for good, an endpoint disabled), sent to an
    # account's notify_email. No host: none are written.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Textbridge <textbridge@localhost>"
    notice_interval_seconds: float = Field(default=3600, ge=0)  # at most one email per account
    notice_poll_seconds: float = Field(default=5.0, gt=0)

    # Contacts: a CSV import is the one request allowed a larger body.
    max_import_rows: int = Field(default=100_000, ge=1)
    max_import_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    # Phone verification (reference/otp-security.md).
    verify_max_checks: int = Field(default=5, ge=1)
    verify_max_sends: int = Field(default=5, ge=1)
    verify_resend_cooldown_seconds: float = Field(default=30.0, ge=0)
    verify_default_lifetime_seconds: int = Field(default=600, ge=1)
    verify_max_lifetime_seconds: int = Field(default=86_400, ge=1)
    # Rate limits on starting verifications ("N/period", several separated by ";"), kept in
    # this process's memory.
    verify_limit_per_phone: str = "5/10 minutes;20/day"
    verify_limit_per_key: str = "200/minute"
    verify_limit_per_ip: str = "60/minute"
    # SMS-pumping guard: more starts by one account than this to one number prefix (the number
    # less its last four digits) in ten minutes blocks the prefix for that account for the
    # given time.
    verify_prefix_burst: int = Field(default=20, ge=1)
    verify_prefix_block_seconds: int = Field(default=12 * 3600, ge=1)
    # The same across all accounts, blocking the prefix for every account: off (0) unless the
    # operator sets it, as one tenant could otherwise stop everyone's codes.
    verify_prefix_burst_all_accounts: int = Field(default=0, ge=0)

    # Dispatch.
    dispatch_batch_size: int = Field(default=200, ge=1)
    # How many messages a channel is given before their answers are committed (with the
    # next chunk's hand-over mark, in one transaction). By default a chunk is what the
    # channel takes at a time (its ``max_batch``: a carrier link's window), which is the most
    # a crash can leave unanswered with a channel that cannot say what it took; set lower to
    # bound that further. It costs throughput: chunks of 100 or 200 instead of one of 500
    # took the end-to-end bench on PostgreSQL from 4,526 to 3,080 messages a second.
    dispatch_chunk_size: int = Field(default=1000, ge=1)
    dispatch_poll_seconds: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    maintenance_interval_seconds: float = Field(default=1.0, gt=0)

    # How often a message no channel can take now (no phone, no carrier: error no_route) is
    # looked at again; it waits queued, without spending attempts, until its ttl ends.
    no_route_recheck_seconds: float = Field(default=30.0, gt=0)

    # Simulator channel: a pretend carrier that "delivers" everything. Unset: on in the
    # development profile, off in production, where a message with no real route waits
    # instead of ending delivered without ever leaving. True or false wins over the profile.
    simulator_enabled: bool | None = None
    simulator_delivery_delay_ms: int = Field(default=1000, ge=0)
    simulator_send_latency_ms: int = Field(default=0, ge=0)
    simulator_loss_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    simulator_temporary_failures: int = Field(default=2, ge=0)
    # False: the simulator plays a carrier that keeps no record of what it took, so messages
    # handed to it just before a crash are sent again (as a real link's window would be).
    simulator_remembers: bool = True

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        # Users paste plain libpq URLs; we always talk to PostgreSQL through asyncpg.
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value.removeprefix(plain)
        return value

    @field_validator("tls_cert", "tls_key", "simulator_enabled", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                # uvicorn would take a typo as a literal host name and quietly trust nobody.
                raise ValueError(
                    f"TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                ) from None
        return ",".join(entries)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'textbridge.db').resolve()}"

    @property
    def simulator_active(self) -> bool:
        """Whether this process runs the simulator: as set, else by the profile."""
        if self.simulator_enabled is not None:
            return self.simulator_enabled
        return self.env is Environment.DEVELOPMENT

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def resolved_secret_key(self) -> str:
        """The server secret: from the environment, else generated once into DATA_DIR."""
        if self.secret_key:
            if self.env is Environment.PRODUCTION and (
                self.secret_key.lower() in _PLACEHOLDER_SECRETS or len(self.secret_key) < 16
            ):
                raise ValueError("TEXTBRIDGE_SECRET_KEY is a placeholder; set a real secret")
            return self.secret_key
        path = self.data_dir / "secret-key"
        if path.exists():
            return path.read_text().strip()
        make_private_dir(self.data_dir)
        key = secrets.token_urlsafe(48)
        write_private_file(path, key + "\n")
        return key


def make_private_dir(path: Path) -> None:
    """The data folder, if missing, made for its owner only (mode 700): it holds the server
    secret, the admin's key and, on SQLite, the database (webhook secrets, phones' keys)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private_file(path: Path, content: str) -> None:
    """Write a file readable by its owner only (mode 600) without a window where it is not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)
