"""The simulator channel on its own: its number ranges, its reports, its memory after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import EntryPoint

import pytest

from tests.eventually import eventually
from textbridge.channels import (
    InboundSms,
    InFlight,
    OutboundMessage,
    Outcome,
    StatusReport,
)
from textbridge.channels import registry as registry_module
from textbridge.channels.registry import Channels, load_factories
from textbridge.channels.simulator import SimulatorChannel, SimulatorConfig
from textbridge.kit.clock import utcnow
from textbridge.models import MessageStatus, MessageType
from textbridge.settings import Environment, Settings


class Collector:
    """A ChannelReporter that keeps what it is told."""

    def __init__(self) -> None:
        self.reports: list[StatusReport] = []
        self.inbound: list[InboundSms] = []

    async def report(self, reports: Sequence[StatusReport]) -> None:
        self.reports.extend(reports)

    async def receive(self, messages: Sequence[InboundSms]) -> None:
        self.inbound.extend(messages)


def outbound(message_id: str, phone: str, attempts: int = 1) -> OutboundMessage:
    return OutboundMessage(
        id=message_id,
        phone=phone,
        sender=None,
        type=MessageType.PLAIN,
        text="hi",
        encoding="gsm7",
        segments=1,
        attempts=attempts,
    )


async def test_each_number_range_behaves_as_documented() -> None:
    channel = SimulatorChannel(SimulatorConfig(delivery_delay=0.01, temporary_failures=1))
    collector = Collector()
    await channel.start(collector)
    try:
        results = await channel.send(
            [
                outbound("ok", "+14155550100"),
                outbound("reject", "+14155550190"),
                outbound("undeliverable", "+14155550192"),
                outbound("silent", "+14155550194"),
                outbound("flaky-first", "+14155550196", attempts=1),
                outbound("flaky-second", "+14155550197", attempts=2),
                outbound("busy", "+14155550198", attempts=7),
            ]
        )
        outcomes = {r.message_id: r.outcome for r in results}
        assert outcomes == {
            "ok": Outcome.SENT,
            "reject": Outcome.FAILED,
            "undeliverable": Outcome.SENT,
            "silent": Outcome.SENT,
            "flaky-first": Outcome.RETRY,
            "flaky-second": Outcome.SENT,
            "busy": Outcome.RETRY,
        }
        await eventually(lambda: len(collector.reports) >= 3)
        await asyncio.sleep(0.05)  # five delivery delays: no other report comes
        reports = {r.message_id: (r.status, r.error_code) for r in collector.reports}
        assert reports == {
            "ok": (MessageStatus.DELIVERED, None),
            "undeliverable": (MessageStatus.FAILED, "simulated_undeliverable"),
            "flaky-second": (MessageStatus.DELIVERED, None),
        }
    finally:
        await channel.stop()
    assert not channel.healthy()


async def test_loss_rate_fails_that_share_of_messages_deterministically() -> None:
    channel = SimulatorChannel(SimulatorConfig(delivery_delay=0, loss_rate=0.3))
    collector = Collector()
    await channel.start(collector)
    try:
        batch = [outbound(f"m{i}", f"+1415200{i:04d}") for i in range(1000)]
        await channel.send(batch)
        await eventually(lambda: len(collector.reports) >= 1000)
    finally:
        await channel.stop()
    lost = {r.message_id for r in collector.reports if r.error_code == "simulated_loss"}
    assert 230 < len(lost) < 370
    again = SimulatorChannel(SimulatorConfig(loss_rate=0.3))
    assert {m.id for m in batch if again._lost(m.id)} == lost


async def test_resume_reports_what_was_sent_before_a_restart() -> None:
    channel = SimulatorChannel(SimulatorConfig(delivery_delay=60))
    collector = Collector()
    await channel.start(collector)
    try:
        long_ago = utcnow() - timedelta(minutes=5)
        await channel.resume(
            [
                InFlight("old", "+14155550100", "sim-old", long_ago),
                InFlight("failing", "+14155550192", "sim-failing", long_ago),
                InFlight("silent", "+14155550194", "sim-silent", long_ago),
                InFlight("recent", "+14155550101", "sim-recent", utcnow()),
            ]
        )
        await eventually(lambda: len(collector.reports) >= 2)
        await asyncio.sleep(0.05)  # no other report comes at once
    finally:
        await channel.stop()
    # Overdue reports go out at once; the recent one waits for its delay; silent never reports.
    assert {r.message_id: r.status for r in collector.reports} == {
        "old": MessageStatus.DELIVERED,
        "failing": MessageStatus.FAILED,
    }


def test_registry_builds_the_simulator_and_routes_by_type() -> None:
    channels = Channels.from_settings(Settings(simulator_enabled=True))
    simulator = channels.route(MessageType.VOICE)
    assert simulator is not None
    assert simulator.name == "simulator"
    assert channels.get("simulator") is simulator
    assert (
        Channels.from_settings(Settings(simulator_enabled=False)).route(MessageType.PLAIN) is None
    )


def test_the_profile_decides_whether_the_simulator_runs_unless_it_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def simulator(settings: Settings) -> bool:
        return Channels.from_settings(settings).get("simulator") is not None

    production = Environment.PRODUCTION
    assert simulator(Settings())  # development, the default
    assert not simulator(Settings(env=production))
    assert simulator(Settings(env=production, simulator_enabled=True))
    assert not simulator(Settings(simulator_enabled=False))
    monkeypatch.setenv("TEXTBRIDGE_ENV", "production")
    monkeypatch.setenv("TEXTBRIDGE_SIMULATOR_ENABLED", "")  # unset: by the profile
    assert not simulator(Settings())
    assert not Channels.from_settings(Settings()).simulating


def test_a_broken_channel_plugin_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="broken", value="no_such_module:Channel", group="textbridge.channels")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [broken])
    factories = load_factories()
    assert "broken" not in factories
    assert "simulator" in factories
