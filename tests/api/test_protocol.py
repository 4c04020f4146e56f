"""How many connections ``textbridge serve`` takes: the setting, within the open-file limit."""

from __future__ import annotations

import resource

from textbridge.api.protocol import ConnectionLimits, protocol_with
from textbridge.settings import Settings


def test_connections_stay_within_80_percent_of_the_open_file_limit() -> None:
    settings = Settings(max_connections=1000)
    assert ConnectionLimits.of(settings, open_files=1024).max_connections == 819
    assert ConnectionLimits.of(settings, open_files=65536).max_connections == 1000
    unlimited = ConnectionLimits.of(settings, open_files=resource.RLIM_INFINITY)
    assert unlimited.max_connections == 1000


def test_the_protocol_class_carries_the_settings_limits() -> None:
    settings = Settings(header_timeout_seconds=3, body_timeout_seconds=7, body_min_rate=100)
    limits = ConnectionLimits.of(settings, open_files=65536)
    assert (limits.header_timeout, limits.body_timeout, limits.body_min_rate) == (3, 7, 100)
    assert protocol_with(limits).limits is limits
