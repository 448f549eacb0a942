"""Signatures of outgoing webhooks, in the style of Stripe: `Outreach-Signature: t=<unix>,v1=<hex>`,
v1 = HMAC-SHA256(secret, f"{t}.{raw body}"). Receivers recompute it and reject old timestamps (replays)."""
from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Outreach-Signature"
EVENT_ID_HEADER = "Outreach-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(*, secret: str, header: str, body: bytes, now: int, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """What a receiver does (docs/api.md has the same in a snippet)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
