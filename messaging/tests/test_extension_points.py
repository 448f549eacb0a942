"""The extension points of lower apps that messaging provides when it starts (messaging/providers.py)."""
from __future__ import annotations

import pytest

from contacts import interface as contacts_interface
from messaging.compliance import suppression_add, unsubscribe_record

pytestmark = pytest.mark.django_db


def test_contacts_address_block_reasons_is_provided_by_the_send_checks(tenant):
    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="manual")
    suppression_add(tenant=tenant, channel="email", value="lee@acme.example", reason="hard_bounce")

    assert contacts_interface.address_block_reasons.provided
    reasons = contacts_interface.address_block_reasons(
        tenant_id=tenant.pk, channel="email", values=["Dana@Acme.example", "lee@acme.example", "free@acme.example"])
    assert reasons == {"Dana@Acme.example": "unsubscribed", "lee@acme.example": "suppressed:hard_bounce"}
