"""SendGrid: the client wrapper (``client``), error kinds (``errors``) and sender identities
(``identities``). The identity services are importable from here too (the admin uses that).
"""
from __future__ import annotations

_IDENTITY_SERVICES = {
    "sender_identity_create",
    "sender_identity_sync",
    "sender_identities_sync",
    "sender_identity_set_paused",
    "sender_identity_resend_verification",
}


def __getattr__(name: str):
    # Lazy, so importing the client or errors never needs the app registry.
    if name in _IDENTITY_SERVICES:
        from messaging.sendgrid import identities

        return getattr(identities, name)
    raise AttributeError(name)
