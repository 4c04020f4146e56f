"""Choosing a SIM: pins, limits, work hours, load, and phones with their stream open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from textbridge.channels import OutboundMessage, Outcome
from textbridge.devices.channel import Sender, choose, within
from textbridge.models import MessageType


def message(n: int, account: str = "A", **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        id=f"m{n}", phone="+14155550100", sender=None, type=MessageType.PLAIN, text="x",
        encoding="gsm7", segments=1, attempts=1, extra=extra or None, account_id=account,
    )  # fmt: skip


def sender(sim: int, account: str = "A", **changes: Any) -> Sender:
    values: dict[str, Any] = {
        "id": sim, "account_id": account, "device_id": f"d{sim}", "usable": True,
        "per_minute": None, "per_day": None, "last_minute": 0, "last_day": 0, "in_flight": 0,
    }  # fmt: skip
    values.update(changes)
    return Sender(**values)


def sims_of(results: list[Any]) -> list[int | None]:
    return [r.sim_card_id if r.outcome is Outcome.ASSIGNED else None for r in results]


def test_the_least_busy_usable_sim_takes_each_message_in_turn() -> None:
    senders = [sender(1, in_flight=2), sender(2), sender(3, usable=False)]
    assert sims_of(choose([message(n) for n in range(4)], senders)) == [2, 2, 1, 2]


def test_limits_per_minute_and_day_leave_the_rest_waiting() -> None:
    senders = [sender(1, per_minute=2), sender(2, per_day=10, last_day=9)]
    results = choose([message(n) for n in range(5)], senders)
    assert sims_of(results) == [1, 2, 1, None, None]
    assert {r.outcome for r in results[3:]} == {Outcome.WAIT}
    assert results[3].error_code == "senders_busy"


def test_a_pin_is_honoured_only_for_the_accounts_own_sim() -> None:
    def senders() -> list[Sender]:
        return [sender(1), sender(2), sender(9, account="B")]

    assert sims_of(choose([message(1, sim_card_id=2)], senders())) == [2]
    # Another account's SIM, or no such SIM: routing chooses among the account's own.
    foreign = [message(2, sim_card_id=9), message(3, sim_card_id=77)]
    assert sims_of(choose(foreign, senders())) == [1, 2]
    busy = [sender(1), sender(2, usable=False)]
    assert sims_of(choose([message(4, sim_card_id=2)], busy)) == [None]  # pinned: it waits


def test_phones_with_their_stream_open_go_first() -> None:
    senders = [sender(1), sender(2, connected=True, in_flight=5)]
    assert sims_of(choose([message(1)], senders)) == [2]


def test_work_hours_in_utc_overnight_too() -> None:
    at = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert within(None, None, at)
    assert within("08:00", "23:45", at)
    assert not within("08:00", "20:00", at)
    assert within("22:00", "06:00", at)
    assert not within("22:00", "06:00", at.replace(hour=12))
