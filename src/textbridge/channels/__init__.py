"""Ways of sending: the channel protocol, the registry and the built-in channels."""

from textbridge.channels.base import (
    Capabilities,
    Channel,
    ChannelError,
    ChannelKind,
    ChannelReporter,
    InboundSms,
    InFlight,
    OutboundMessage,
    Outcome,
    PermanentChannelError,
    RetriableChannelError,
    SendResult,
    StatusReport,
)
from textbridge.channels.registry import Channels

__all__ = [
    "Capabilities",
    "Channel",
    "ChannelError",
    "ChannelKind",
    "ChannelReporter",
    "Channels",
    "InFlight",
    "InboundSms",
    "OutboundMessage",
    "Outcome",
    "PermanentChannelError",
    "RetriableChannelError",
    "SendResult",
    "StatusReport",
]
