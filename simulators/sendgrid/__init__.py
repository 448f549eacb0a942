"""A local SendGrid: the API slice the system uses, plus recipients that open, click, bounce and reply.

See docs/simulator.md. Tests use ``start_simulator``; the demo runs ``manage.py sendgrid_simulator``.
"""
from simulators.sendgrid.signing import (
    generate_key_pair,
    load_private_key,
    public_key_b64,
    sign_event_payload,
    verify_event_payload,
)

__all__ = [
    "generate_key_pair",
    "load_private_key",
    "public_key_b64",
    "sign_event_payload",
    "verify_event_payload",
]
