"""What messaging provides to the extension points lower apps declare (outreach.extensions).

Called once from MessagingConfig.ready(): the imports below need the app registry, so they cannot run when
apps.py itself is imported.
"""
from __future__ import annotations

from contacts.interface import address_block_reasons
from messaging.compliance.send_checks import send_block_reasons


def provide_extension_points() -> None:
    # contacts asks why an address may not be contacted (opt-outs, suppressions) without importing messaging.
    address_block_reasons.provide(send_block_reasons)
