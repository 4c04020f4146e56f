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
        if settings.simulator_enabled:
            enabled.append(factories[ChannelKind.SIMULATOR](settings))
        return cls([*enabled, *extra])

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Channel | None:
        return self._by_name.get(name)

    def route(self, message_type: MessageType) -> Channel | None:
        """The channel for a new message: the first able to carry its type.

        The device channel is never a default: the dispatcher gives it the messages of
        accounts that have phones."""
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
