"""SendGrid Signed Event Webhook verification.

ECDSA P-256 / SHA-256 over the timestamp text immediately followed by the RAW body (never
re-serialised JSON). The signature is base64 DER ``SEQUENCE{r, s}``; the public key is base64
DER SubjectPublicKeyInfo. SendGrid's own helper does not check the timestamp's age, so the
replay window is enforced here.
"""
from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    reason: str = ""


@functools.lru_cache(maxsize=8)
def load_public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64.strip()))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an EC P-256 public key")
    return key


def verify_signed_webhook(
    *,
    public_key_b64: str,
    signature_b64: str | None,
    timestamp: str | None,
    body: bytes,
    now_epoch: float,
    max_age_seconds: int,
    max_future_seconds: int,
) -> SignatureCheck:
    """Check freshness first (cheap), then the signature over ``timestamp + body``."""
    if not public_key_b64:
        return SignatureCheck(False, "webhook public key not configured")
    if not signature_b64 or not timestamp:
        return SignatureCheck(False, "missing signature or timestamp header")
    try:
        ts = int(timestamp.strip())
    except ValueError:
        return SignatureCheck(False, "timestamp is not epoch seconds")
    if now_epoch - ts > max_age_seconds:
        return SignatureCheck(False, "timestamp too old (replay window exceeded)")
    if ts - now_epoch > max_future_seconds:
        return SignatureCheck(False, "timestamp too far in the future")
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(False, "signature is not base64")
    try:
        key = load_public_key(public_key_b64)
    except (ValueError, binascii.Error):
        return SignatureCheck(False, "webhook public key is invalid")
    try:
        key.verify(signature, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return SignatureCheck(False, "signature does not verify")
    return SignatureCheck(True)
