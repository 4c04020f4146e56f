"""The webhook receiver, for tests where a phone's events reach the account's webhooks."""

from tests.webhooks.conftest import receiver

__all__ = ["receiver"]
