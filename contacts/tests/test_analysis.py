"""Lead analysis: AI over the stub (real HTTP), the deterministic fallback, and the staggered plan jobs."""
from __future__ import annotations

import pytest

from campaigns.tests.factories import ContactCampaignFactory
from contacts.analysis import analysis_fallback, leads_analyse
from contacts.models import Lead
from contacts.tests.factories import ContactFactory, LeadFactory
from outreach.ai.models import AICall
from outreach.testing import queued_plan_jobs
from simulators.openai_stub.server import chat_json, server_error
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.django_db



@pytest.fixture
def lead(tenant):
    lead = LeadFactory(tenant=tenant, name="Acme Logistics", domain="acme.example",
                       website_text="Acme runs freight forwarding for mid-size retailers. Onboarding is manual.")
    ContactFactory(tenant=tenant, lead=lead, first_name="Dana", last_name="Smith", title="Head of Operations")
    ContactFactory(tenant=tenant, lead=lead, first_name="Tom", last_name="Becker", title="CFO")
    return lead


def test_ai_analysis_is_sanitised_and_stored(stub, lead, plan_jobs_broker):
    stub.enqueue(chat_json({
        "summary": "  Acme forwards freight\nfor retailers.  ", "pains": [f"pain {i}" for i in range(8)],
        "angles": ["onboarding in days"], "fit_score": 140, "fit_reasons": ["manual onboarding"],
    }, prompt_tokens=900, completion_tokens=120))

    leads_analyse(lead_ids=[lead.pk])

    lead.refresh_from_db()
    assert lead.analysis_status == Lead.AnalysisStatus.DONE
    analysis = lead.analysis
    assert analysis["summary"] == "Acme forwards freight for retailers."
    assert analysis["pains"] == [f"pain {i}" for i in range(5)]  # at most five
    assert analysis["fit_score"] == 100  # clamped to 0-100
    assert analysis["source"] == "ai"
    request = stub.requests[0]
    assert request.json["response_format"]["json_schema"]["name"] == "lead_analysis"
    for fact in ("Acme Logistics", "acme.example", "freight forwarding", "Dana Smith", "Head of Operations", "CFO"):
        assert fact in request.text, fact
    call = AICall.objects.get(tenant=lead.tenant)
    assert (call.purpose, call.prompt_tokens, call.completion_tokens) == ("lead_analysis", 900, 120)


def test_ai_failure_falls_back_to_the_deterministic_analysis(stub, settings, lead, plan_jobs_broker):
    settings.AI_MAX_ATTEMPTS = 2
    stub.enqueue(server_error(), server_error())

    leads_analyse(lead_ids=[lead.pk])

    lead.refresh_from_db()
    assert lead.analysis_status == Lead.AnalysisStatus.DONE
    assert lead.analysis["source"] == "fallback" and "AI failed (server)" in lead.analysis["detail"]
    assert "shipment delays and poor visibility" in lead.analysis["pains"]


def test_deterministic_analysis_reads_the_text_and_is_repeatable():
    kwargs = dict(name="Acme", domain="acme.example",
                  text="We run freight logistics. Onboarding of shippers is manual, in spreadsheets.",
                  titles=["Head of Operations"], offers=["Onboarding automation for logistics shippers"])
    first = analysis_fallback(**kwargs)
    assert first == analysis_fallback(**kwargs)
    assert first["summary"] == "We run freight logistics. Onboarding of shippers is manual, in spreadsheets."
    assert first["pains"][:3] == ["manual, spreadsheet-driven processes", "slow onboarding",
                                  "shipment delays and poor visibility"]
    assert 70 <= first["fit_score"] <= 100
    assert any("decision-maker" in reason for reason in first["fit_reasons"])
    empty = analysis_fallback(name="Blank Co", domain="", text="", titles=[], offers=["Anything"])
    assert empty["summary"] == "Blank Co." and empty["fit_score"] < first["fit_score"]
    assert any("little to go on" in reason for reason in empty["fit_reasons"])


def test_an_analysed_lead_is_not_analysed_again_but_its_plans_are_still_queued(
        stub, tenant, plan_jobs_broker, django_capture_on_commit_callbacks):
    lead = LeadFactory(tenant=tenant, analysis={"summary": "done before", "pains": []},
                       analysis_status=Lead.AnalysisStatus.DONE)
    cc = ContactCampaignFactory(tenant=tenant, contact=ContactFactory(tenant=tenant, lead=lead))

    with django_capture_on_commit_callbacks(execute=True):
        leads_analyse(lead_ids=[lead.pk, 999_999_999])

    assert stub.requests == []
    lead.refresh_from_db()
    assert lead.analysis == {"summary": "done before", "pains": []}
    assert [q["ids"] for q in queued_plan_jobs()] == [[cc.pk]]
