"""Prometheus metrics of this process (scraped at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_ACCEPTED = Counter(
    "textbridge_messages_accepted", "Outbound messages accepted through any API"
)
MESSAGES_RECEIVED = Counter("textbridge_messages_received", "Inbound messages stored")
MESSAGE_TRANSITIONS = Counter(
    "textbridge_message_transitions", "Messages that reached a status", ["status"]
)
DISPATCH_BATCH_SECONDS = Histogram(
    "textbridge_dispatch_batch_seconds",
    "Time to claim, send and record one dispatch batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
