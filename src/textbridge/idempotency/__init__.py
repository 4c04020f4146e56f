"""Replaying the first answer to a request retried with the same ``Idempotency-Key``."""
