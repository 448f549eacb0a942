"""What campaigns provides to contacts' extension points: running enrolments, a lead's offers, plan jobs
queued when leads were analysed."""
from __future__ import annotations

import pytest

from campaigns.contacts_extensions import PLAN_JOB_CHUNK, PLAN_JOB_STAGGER_SECONDS
from campaigns.models import ContactCampaign
from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory, purge_queues, queued_tasks
from contacts import interface as contacts_interface
from contacts.tests.factories import ContactFactory, LeadFactory
from outreach.queues import Queue, TaskName

pytestmark = pytest.mark.django_db


def test_the_extension_points_are_provided_at_start_up():
    assert contacts_interface.contacts_in_running_campaigns.provided
    assert contacts_interface.lead_offers.provided


def test_a_contact_in_a_live_enrolment_is_running_and_a_finished_one_is_not():
    cc = ContactCampaignFactory(status=ContactCampaign.Status.PAUSED)
    other = ContactCampaignFactory(status=ContactCampaign.Status.COMPLETED)
    running = contacts_interface.contacts_in_running_campaigns
    assert running(tenant_id=cc.tenant_id, contact_ids=[cc.contact_id]) is True
    assert running(tenant_id=other.tenant_id, contact_ids=[other.contact_id]) is False
    assert running(tenant_id=other.tenant_id, contact_ids=[cc.contact_id]) is False  # another tenant's


def test_a_lead_with_one_contact_in_a_live_enrolment_is_running():
    cc = ContactCampaignFactory(status=ContactCampaign.Status.PENDING)
    lead = LeadFactory(tenant=cc.tenant)
    cc.contact.lead = lead
    cc.contact.save(update_fields=["lead"])
    running = contacts_interface.contacts_in_running_campaigns
    assert running(tenant_id=cc.tenant_id, lead_id=lead.pk) is True
    ContactCampaign.objects.filter(pk=cc.pk).update(status=ContactCampaign.Status.STOPPED)
    assert running(tenant_id=cc.tenant_id, lead_id=lead.pk) is False


def test_a_leads_offers_are_its_contacts_campaigns_else_the_tenants_latest():
    cc = ContactCampaignFactory()
    lead = LeadFactory(tenant=cc.tenant)
    offers = contacts_interface.lead_offers
    CampaignFactory(tenant=cc.tenant, offer="Latest offer")
    assert offers(tenant_id=cc.tenant_id, lead_id=lead.pk) == ["Latest offer"]  # no contact of the lead enrolled
    cc.contact.lead = lead
    cc.contact.save(update_fields=["lead"])
    cc.campaign.offer = "The lead's own offer"
    cc.campaign.save(update_fields=["offer"])
    assert offers(tenant_id=cc.tenant_id, lead_id=lead.pk) == ["The lead's own offer"]
    assert offers(tenant_id=LeadFactory().tenant_id, lead_id=lead.pk) == []  # another tenant sees none


def test_analysed_leads_queue_plan_jobs_for_their_pending_enrolments_in_staggered_chunks(
        django_capture_on_commit_callbacks):
    purge_queues(Queue.CAMPAIGN_CREATION)
    campaign = CampaignFactory()
    lead = LeadFactory(tenant=campaign.tenant)
    pending = [ContactCampaignFactory(tenant=campaign.tenant, campaign=campaign,
                                      contact=ContactFactory(tenant=campaign.tenant, lead=lead))
               for _ in range(PLAN_JOB_CHUNK + 1)]
    ContactCampaignFactory(tenant=campaign.tenant, campaign=campaign, status=ContactCampaign.Status.STOPPED,
                           contact=ContactFactory(tenant=campaign.tenant, lead=lead))  # not waiting for a plan
    with django_capture_on_commit_callbacks(execute=True):
        queued = contacts_interface.leads_analysed.send(lead_ids=[lead.pk])
    ids = [cc.pk for cc in pending]
    assert queued == [ids]
    tasks = queued_tasks(Queue.CAMPAIGN_CREATION)
    assert tasks == [(TaskName.GENERATE_PLANS, [ids[:PLAN_JOB_CHUNK]]),
                     (TaskName.GENERATE_PLANS, [ids[PLAN_JOB_CHUNK:]])]
    assert PLAN_JOB_STAGGER_SECONDS > 0  # the second chunk went out with a countdown
