"""The held-send rule (campaigns.holds): the Python check and the SQL forms say the same thing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from campaigns.holds import send_hold_reason, send_holds
from campaigns.models import Campaign
from campaigns.tests.factories import CampaignFactory

VERIFIED = SimpleNamespace(is_paused=False, status="verified")


def _reason(**overrides):
    kwargs = dict(global_stop=False, tenant_sending_paused=False, campaign_status="active",
                  contact_campaign_status="active", sender=VERIFIED)
    return send_hold_reason(**{**kwargs, **overrides})


def test_nothing_holds_an_active_send_with_a_verified_sender():
    assert _reason() is None
    assert _reason(campaign_status=None, contact_campaign_status=None) is None  # a message outside campaigns


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"global_stop": True, "tenant_sending_paused": True}, "global_stop"),
    ({"tenant_sending_paused": True, "campaign_status": "paused"}, "tenant_paused"),
    ({"campaign_status": "draft", "contact_campaign_status": "paused"}, "campaign_draft"),
    ({"contact_campaign_status": "paused", "sender": None}, "contact_campaign_paused"),
    ({"sender": None}, "no_sender_identity"),
    ({"sender": SimpleNamespace(is_paused=True, status="verified")}, "sender_paused"),
    ({"sender": SimpleNamespace(is_paused=False, status="pending")}, "sender_pending"),
])
def test_the_first_hold_found_names_the_reason(overrides, reason):
    assert _reason(**overrides) == reason


@pytest.mark.django_db
def test_the_snapshot_holds_paused_tenants_and_campaigns_that_are_not_active_or_have_no_verified_sender():
    active = CampaignFactory()
    paused = CampaignFactory(status=Campaign.Status.PAUSED)
    no_sender = CampaignFactory(sender_identity=None)
    unverified = CampaignFactory()
    unverified.sender_identity.status = "pending"
    unverified.sender_identity.save(update_fields=["status"])
    tenant_paused = CampaignFactory()
    tenant_paused.tenant.sending_paused = True
    tenant_paused.tenant.save(update_fields=["sending_paused"])
    holds = send_holds()
    assert not holds.holds(tenant_id=active.tenant_id, campaign_id=active.pk)
    for held in (paused, no_sender, unverified, tenant_paused):
        assert holds.holds(tenant_id=held.tenant_id, campaign_id=held.pk)
