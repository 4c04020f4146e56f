"""API keys: random, shown once, stored as a SHA-256 digest.

A fast digest is the right tool here: keys carry 256 bits of entropy, so there is nothing to
brute-force, and the lookup sits on every request. (Passwords, low-entropy, get argon2.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

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


def one_time_code(secret: str, nonce: str, length: int) -> str:
    """A ``length``-digit code derived from the server secret and a random nonce.

    Nothing stored lets anyone recompute it without the secret, yet the server can send the
    same code again (a resend) without ever storing it."""
    digest = hmac.new(secret.encode(), b"code:" + nonce.encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest) % 10**length).zfill(length)


def code_fingerprint(secret: str, verification_id: str, code: str) -> str:
    """What is stored to check a code: HMAC-SHA256(secret, id ‖ code). A plain hash of a
    six-digit code would be reversed in under a second."""
    return sign(secret, f"{verification_id}:{code}".encode())


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Textbridge-Signature``'s hex HMAC-SHA256, over ``"<timestamp>.<body>"``."""
    return sign(secret, str(timestamp).encode() + b"." + body)


def verify_webhook(
    secret: str, body: bytes, timestamp: str, signature: str, *, tolerance: int = 300
) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent (so a captured
    request cannot be replayed later). ``signature`` is the header as sent (``v1=<hex>``)."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = "v1=" + sign_webhook(secret, int(timestamp), body)
    return hmac.compare_digest(expected, signature)


def sign_phone_event(key: str, body: bytes, timestamp: str) -> str:
    """The SMSGate app's webhook signature: hex HMAC-SHA256 over the raw body, then the
    ``X-Timestamp`` header (the other order from ours, as the app does it)."""
    return sign(key, body + timestamp.encode())
