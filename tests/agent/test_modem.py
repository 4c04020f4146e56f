"""The agent's GSM modem driver against the simulated modem on a real pseudo-terminal: AT
commands in PDU and text mode, multipart, status reports, received SMS (single, joined from
parts, waiting on the SIM from before the start), a locked SIM and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tests.eventually import eventually
from textbridge.agent.backend import Events, Incoming
from textbridge.agent.modem import ModemBackend, ModemError
from textbridge.simulator.modem import ModemSimulator

LONG_GSM = "The quick brown fox jumps over the lazy dog; " * 5  # 225 septets: 2 parts
LONG_UCS2 = "Привет, мир! 👋 " * 6  # 96 UTF-16 units: 2 parts


class Phone:
    """What the backend reports, as the agent would see it."""

    def __init__(self) -> None:
        self.delivered: dict[str, str | None] = {}
        self.received: list[Incoming] = []
        self.posting = 0  # posts begun
        self.server_up = asyncio.Event()  # a post waits while it is clear
        self.server_up.set()

    async def post(self, sms: Incoming) -> None:
        self.posting += 1
        await self.server_up.wait()
        self.received.append(sms)

    def events(self) -> Events:
        return Events(delivered=self.delivered.__setitem__, received=self.post)


@pytest.fixture
async def simulator() -> AsyncIterator[ModemSimulator]:
    modem = ModemSimulator(report_delay=0.05, fail_prefix="+1999").start()
    yield modem
    modem.stop()


async def started(
    simulator: ModemSimulator, phone: Phone, mode: str = "pdu", pin: str | None = None
) -> ModemBackend:
    backend = ModemBackend(simulator.path, mode=mode, pin=pin, timeout=5)  # type: ignore[arg-type]
    await backend.start(phone.events())
    return backend


@pytest.mark.parametrize("mode", ["pdu", "text"])
async def test_sends_and_hears_delivery(simulator: ModemSimulator, mode: str) -> None:
    phone = Phone()
    backend = await started(simulator, phone, mode)
    try:
        assert await backend.send("m1", "+15550001111", "hello €", 1) is None
        assert await backend.send("m2", "+15550002222", LONG_UCS2, 1) is None
        assert await backend.send("m3", "+19995550000", "doomed", 1) is None
        await eventually(lambda: len(phone.delivered) == 3)
    finally:
        await backend.close()
    assert phone.delivered["m1"] is None
    assert phone.delivered["m2"] is None  # both parts reported
    assert phone.delivered["m3"] == "status report 0x41"
    texts = [sms.text for sms in simulator.sent if sms.number == "+15550002222"]
    assert "".join(texts) == LONG_UCS2
    assert len(texts) == 2
    assert simulator.sent[0].text == "hello €"
    if mode == "pdu":  # joined on the handset by the concatenation header
        parts = [s.concat for s in simulator.sent if s.number == "+15550002222"]
        assert [(c.total, c.sequence) for c in parts if c] == [(2, 1), (2, 2)]
        assert parts[0] is not None
        assert parts[1] is not None
        assert parts[0].reference == parts[1].reference
    assert "ATE0" in simulator.commands  # echo was on, and the driver read past it


async def test_multipart_gsm_in_pdu_mode(simulator: ModemSimulator) -> None:
    phone = Phone()
    backend = await started(simulator, phone)
    try:
        assert await backend.send("m1", "15550001111", LONG_GSM, 1) is None
        await eventually(lambda: "m1" in phone.delivered)
    finally:
        await backend.close()
    assert [sms.number for sms in simulator.sent] == ["15550001111", "15550001111"]
    assert "".join(sms.text for sms in simulator.sent) == LONG_GSM
    assert len([c for c in simulator.commands if c.startswith("AT+CMGS=")]) == 2


@pytest.mark.parametrize("mode", ["pdu", "text"])
async def test_receives_and_clears_the_sim(simulator: ModemSimulator, mode: str) -> None:
    before = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    simulator.receive("+447700900001", "waiting since before", before)
    phone = Phone()
    backend = await started(simulator, phone, mode)
    try:
        await eventually(lambda: len(phone.received) == 1)
        simulator.receive("+447700900002", "Ответ: да ✅")
        if mode == "pdu":
            simulator.receive("+447700900003", LONG_GSM)
        await eventually(lambda: len(phone.received) == (3 if mode == "pdu" else 2))
        await eventually(lambda: not simulator.storage)  # deleted once the server had them
    finally:
        await backend.close()
    first, second = phone.received[0], phone.received[1]
    assert (first.sender, first.text) == ("+447700900001", "waiting since before")
    assert first.received_at == before
    assert (second.sender, second.text) == ("+447700900002", "Ответ: да ✅")
    if mode == "pdu":
        assert phone.received[2].text == LONG_GSM  # two parts, joined
    assert len({sms.id for sms in phone.received}) == len(phone.received)


async def test_an_sms_stays_on_the_sim_until_the_server_has_it(simulator: ModemSimulator) -> None:
    phone = Phone()
    phone.server_up.clear()
    backend = await started(simulator, phone)
    try:
        simulator.receive("+447700900009", "keep me")
        await eventually(lambda: phone.posting == 1)
        assert simulator.storage  # not posted yet: still on the SIM
        phone.server_up.set()
        await eventually(lambda: len(phone.received) == 1)
        await eventually(lambda: not simulator.storage)
    finally:
        await backend.close()


async def test_the_same_sms_read_again_has_the_same_id(simulator: ModemSimulator) -> None:
    """An agent killed after posting but before deleting posts it again: the server keeps
    one, by its id."""
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    ids = []
    for _ in range(2):
        simulator.storage.clear()
        simulator.receive("+447700900010", "twice", at)
        phone = Phone()
        backend = await started(simulator, phone)
        await eventually(lambda phone=phone: len(phone.received) == 1)  # type: ignore[misc]
        await backend.close()
        ids.append(phone.received[0].id)
    assert ids[0] == ids[1]


async def test_a_locked_sim(simulator: ModemSimulator) -> None:
    simulator.stop()
    locked = ModemSimulator(pin="1234").start()
    try:
        with pytest.raises(ModemError, match="PIN"):
            await started(locked, Phone())
        backend = await started(locked, Phone(), pin="1234")
        assert await backend.send("m1", "+15550001111", "unlocked", 1) is None
        await backend.close()
    finally:
        locked.stop()


async def test_a_refused_pdu_is_an_error_not_a_hang(simulator: ModemSimulator) -> None:
    phone = Phone()
    backend = await started(simulator, phone)
    try:
        error = await backend.send("m1", "not a number", "x", 1)
        assert error is not None
        with pytest.raises(ModemError, match=r"\+CME ERROR: 4"):
            await backend.command("AT+CUSD=1")
        assert await backend.send("m2", "+15550001111", "still works", 1) is None
    finally:
        await backend.close()
