"""Lead analysis -> plan jobs: after a lead is analysed, campaigns (a `leads_analysed` listener) queues plan
generation for the pending contact campaigns of its contacts, in staggered chunks.

Moved out of test_analysis.py with the plan-job code (it left contacts for campaigns); the constants are
campaigns'. Needs campaigns' provider of contacts.interface.leads_analysed.
"""
from __future__ import annotations

import pytest

from campaigns.contacts_extensions import PLAN_JOB_CHUNK, PLAN_JOB_STAGGER_SECONDS
from campaigns.models import ContactCampaign
from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory
from contacts.ai_tasks import analyse_leads
from contacts.models import Contact
from contacts.tests.factories import LeadFactory
from outreach.testing import queued_plan_jobs
from simulators.openai_stub.testing import clean_ai_redis_fixture  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.django_db



def test_plan_jobs_for_pending_contact_campaigns_are_queued_in_staggered_chunks(
        clean_ai_redis, settings, tenant, plan_jobs_broker, django_capture_on_commit_callbacks):
    settings.OPENAI_API_KEY = ""
    lead = LeadFactory(tenant=tenant)
    campaign = CampaignFactory(tenant=tenant)
    contacts = Contact.objects.bulk_create(
        [Contact(tenant=tenant, lead=lead, first_name=f"C{i}", email=f"c{i}@acme.example") for i in range(45)])
    ccs = ContactCampaign.objects.bulk_create(
        [ContactCampaign(tenant=tenant, campaign=campaign, contact=c) for c in contacts])
    ContactCampaign.objects.filter(pk=ccs[0].pk).update(status=ContactCampaign.Status.CANCELED)
    other_lead_cc = ContactCampaignFactory(tenant=tenant)  # a contact of another lead: not queued

    with django_capture_on_commit_callbacks(execute=True):  # sent after commit, as in production
        analyse_leads([lead.pk])

    queued = queued_plan_jobs()
    expected_ids = [cc.pk for cc in ccs[1:]]
    assert [q["task"] for q in queued] == ["campaign_creation.generate_plans"] * 3
    assert [len(q["ids"]) for q in queued] == [PLAN_JOB_CHUNK, PLAN_JOB_CHUNK, 4]
    assert [i for q in queued for i in q["ids"]] == expected_ids
    assert other_lead_cc.pk not in expected_ids
    # First chunk at once, the next ones a few seconds apart.
    assert queued[0]["eta"] is None and queued[1]["eta"] is not None and queued[2]["eta"] > queued[1]["eta"]
    assert PLAN_JOB_STAGGER_SECONDS <= 5
    lead.refresh_from_db()
    assert lead.analysis["source"] == "fallback" and lead.analysis_status == "done"
