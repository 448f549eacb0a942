"""ECDSA P-256 signing exactly as SendGrid's Signed Event Webhook does it.

Signed bytes are the timestamp text immediately followed by the raw body; the
signature is base64 of a DER SEQUENCE{r, s}; the public key travels as base64 of
a DER SubjectPublicKeyInfo. Exported so that receiver tests can forge batches.
"""
from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def generate_key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh P-256 key and its public half as SendGrid publishes it (base64 DER SPKI)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return private_key, public_key_b64(private_key)


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def sign_event_payload(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """Base64 DER signature over ``timestamp + body`` (the X-Twilio-Email-Event-Webhook-Signature value)."""
    signature = private_key.sign(timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def verify_event_payload(public_key_b64_text: str, timestamp: str, body: bytes, signature_b64: str) -> bool:
    """The receiver's side, for tests and for the simulator's own self-check."""
    public_key = serialization.load_der_public_key(base64.b64decode(public_key_b64_text))
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    try:
        public_key.verify(
            base64.b64decode(signature_b64), timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_private_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """Load a PEM (PKCS#8 or SEC1) or DER P-256 private key, so a demo keeps one public key across restarts."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        key = serialization.load_pem_private_key(data, password=None)
    else:
        key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: not an EC P-256 private key")
    return key


def private_key_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
