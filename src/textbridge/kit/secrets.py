"""API keys: random, shown once, stored as a SHA-256 digest.

A fast digest is the right tool here: keys carry 256 bits of entropy, so there is nothing to
brute-force, and the lookup sits on every request. (Passwords, low-entropy, get argon2.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "tb_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """Enough of a key for a person to tell keys apart, never enough to use it."""
    return key[:10]


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
