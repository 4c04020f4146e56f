"""The channel registry: which class serves each channel kind, and the channels this process runs.

Built-in kinds are registered explicitly. Third-party channels come from the
``textbridge.channels`` entry-point group; each is loaded on its own, so one broken plugin is
logged and skipped instead of stopping startup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

import structlog

from textbridge.channels.base import Channel, ChannelKind, ChannelReporter
from textbridge.channels.simulator import SimulatorChannel
from textbridge.models import MessageType
from textbridge.settings import Settings

log = structlog.get_logger(__name__)

ChannelFactory = Callable[[Settings], Channel]

SIMULATOR_WARNING = (
    "THE SIMULATOR IS ACTIVE: messages with no phone or carrier to go through are not sent "
    "to anyone, yet end delivered and charged. Production: TEXTBRIDGE_ENV=production"
)

BUILTIN: dict[str, ChannelFactory] = {
    ChannelKind.SIMULATOR: SimulatorChannel.from_settings,
}


def load_factories() -> dict[str, ChannelFactory]:
    factories = dict(BUILTIN)
    for entry in entry_points(group="textbridge.channels"):
        try:
            factories.setdefault(entry.name, entry.load())
        except Exception:
            log.exception("channel plugin failed to load; skipped", plugin=entry.name)
    return factories


class Channels:
    """The channel instances of one process, by name."""

    def __init__(self, channels: list[Channel]) -> None:
        self._by_name = {channel.name: channel for channel in channels}

    @classmethod
    def from_settings(cls, settings: Settings, *extra: Channel) -> Channels:
        """The channels the settings enable, and ``extra`` ones built elsewhere (the device
        channel, which needs the database)."""
        factories = load_factories()
        enabled: list[Channel] = []
        if settings.simulator_active:
            enabled.append(factories[ChannelKind.SIMULATOR](settings))
        return cls([*enabled, *extra])

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Channel | None:
        return self._by_name.get(name)

    @property
    def simulating(self) -> bool:
        """Whether the simulator is one of them: messages may "go" nowhere."""
        return any(channel.kind is ChannelKind.SIMULATOR for channel in self)

    def carries(self, message_type: MessageType) -> bool:
        """Whether any channel here, phones included, can send this type at all."""
        return any(message_type in channel.capabilities.message_types for channel in self)

    def route(
        self, message_type: MessageType, *, named: str | None = None, phones: bool = False
    ) -> Channel | None:
        """The channel a message goes through now, the one place that decides it.

        The channel it names (``named``: asked for, or ``device`` for one a phone had) if this
        process has it; else, when its account has ``phones``, the device channel; else the
        first other channel able to carry its type (the simulator, where it runs). A message
        named ``device`` whose account has no phones any more is routed as any other message
        of an account without phones. None: nothing can take it now (it waits, ``no_route``)."""
        if named == ChannelKind.DEVICE and not phones:
            named = None
        if named is not None and (chosen := self._by_name.get(named)) is not None:
            return chosen
        device = self._by_name.get(ChannelKind.DEVICE)
        if phones and device is not None and message_type in device.capabilities.message_types:
            return device
        for channel in self._by_name.values():
            if channel.kind is ChannelKind.DEVICE:
                continue
            if message_type in channel.capabilities.message_types:
                return channel
        return None

    async def start(self, reporter: ChannelReporter) -> None:
        for channel in self._by_name.values():
            await channel.start(reporter)

    async def stop(self) -> None:
        for channel in self._by_name.values():
            await channel.stop()
