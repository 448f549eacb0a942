"""An opt-out stops every live contact campaign of that address in that tenant and channel (through
campaigns.services.contact_campaigns_stop_for_address), with a transition recorded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from campaigns.models import CampaignTransition, ContactCampaign
from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory
from contacts.tests.factories import ContactFactory
from messaging.compliance import unsubscribe_record

pytestmark = pytest.mark.django_db

PLAN = json.loads((Path(django_settings.BASE_DIR) / "campaigns/examples/example_plan.json").read_text())


def _active(tenant, contact, channel: str = "email", campaign=None) -> ContactCampaign:
    return ContactCampaignFactory(tenant=tenant, contact=contact, channel=channel, status="active",
                                  current_node_id=PLAN["startNodeId"], node_visit=1, plan_json=PLAN,
                                  **({"campaign": campaign} if campaign else {}))


@pytest.mark.parametrize(("source", "event"), [("link_click", "unsubscribe"), ("one_click", "unsubscribe"),
                                               ("sendgrid_webhook", "unsubscribe"), ("manual", "unsubscribe"),
                                               ("reply", "stop_request")])
def test_unsubscribe_stops_every_active_campaign_of_the_address_with_a_transition(tenant, source, event):
    dana = ContactFactory(tenant=tenant, email="dana@acme.example")
    first, second = _active(tenant, dana), _active(tenant, dana)
    bystander = _active(tenant, ContactFactory(tenant=tenant, email="bob@acme.example"))

    unsubscribe_record(tenant=tenant, channel="email", value="Dana@Acme.example", source=source)

    for cc in (first, second):
        cc.refresh_from_db()
        assert cc.status == "stopped", source
        transition = CampaignTransition.objects.get(contact_campaign=cc)
        assert transition.event == event
    bystander.refresh_from_db()
    assert bystander.status == "active"


def test_unsubscribe_leaves_other_tenants_and_other_channels_running(tenant, other_tenant):
    mine = _active(tenant, ContactFactory(tenant=tenant, email="dana@acme.example"))
    theirs = _active(other_tenant, ContactFactory(tenant=other_tenant, email="dana@acme.example"))

    unsubscribe_record(tenant=tenant, channel="sms", value="+14155550100", source="sms_keyword")
    mine.refresh_from_db()
    assert mine.status == "active"

    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="manual")
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("stopped", "active")


def test_a_campaign_enrolled_after_the_opt_out_is_stopped_by_a_repeat_unsubscribe(tenant):
    dana = ContactFactory(tenant=tenant, email="dana@acme.example")
    unsubscribe_record(tenant=tenant, channel="email", value=dana.email, source="link_click")
    late = _active(tenant, dana, campaign=CampaignFactory(tenant=tenant))

    unsubscribe_record(tenant=tenant, channel="email", value=dana.email, source="one_click")
    late.refresh_from_db()
    assert late.status == "stopped"


@pytest.mark.django_db
def test_an_opt_out_is_kept_even_when_stopping_its_campaigns_fails(monkeypatch):
    from campaigns import services as campaign_services
    from messaging.compliance import send_block_reason, unsubscribe_record
    from messaging.models import ContactUnsubscribe
    from outreach.tenancy.tests.factories import TenantFactory

    def broken_stop(**kwargs):
        raise RuntimeError("lock timeout")

    monkeypatch.setattr(campaign_services, "contact_campaigns_stop_for_address", broken_stop)
    tenant = TenantFactory()

    unsubscribe_record(tenant=tenant, channel="email", value="Dana@Acme.example", source="link_click")

    assert ContactUnsubscribe.objects.filter(tenant=tenant, channel_value="dana@acme.example").exists()
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == "unsubscribed"
