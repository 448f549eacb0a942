"""Plan generation with the real openai client against the stub over real HTTP (nothing patched)."""
from __future__ import annotations

import copy
import json

import pytest

from campaigns.ai_tasks import generate_plans
from campaigns.generation import contact_campaign_generate_plan, plan_draft, plan_inputs_for_contact_campaign
from campaigns.models import CampaignPlanVersion, ContactCampaign
from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory
from contacts.tests.factories import ContactFactory, LeadFactory
from outreach.ai.models import AICall
from simulators.openai_stub.server import chat_json, server_error
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.django_db


def ai_plan(first_name: str, zone: str = "America/Los_Angeles") -> dict:
    """A plan as a strict structured output would send it (optional keys present as null)."""
    def send(node_id, subject, text, transitions):
        return {"id": node_id, "type": "send", "channel": "email",
                "message": {"subject": subject, "text": text, "html": None}, "transitions": transitions}

    def t(on, to, after=None, within=None):
        return {"on": on, "to": to, "after": after, "within": within}

    return {
        "version": "1.0", "timezone": zone, "quietHours": {"start": "20:00", "end": "08:00"},
        "sendDays": ["mon", "tue", "wed", "thu", "fri"], "startNodeId": "intro",
        "nodes": [
            send("intro", "Faster shipper onboarding at Acme",
                 f"Hi {first_name},\n\nYour team onboards new shippers by hand. We cut that to days. "
                 "Worth a 20-minute demo?\n\nSam",
                 [t("reply_positive", "done_interested"), t("reply_negative", "done"),
                  t("no_reply", "bump", after="P4D")]),
            send("bump", "Re: Faster shipper onboarding at Acme",
                 f"Hi {first_name}, just bringing this up once more. Is onboarding on your list this quarter?\n\nSam",
                 [t("no_reply", "done", after="P5D")]),
            {"id": "done_interested", "type": "stop", "reason": "interested"},
            {"id": "done", "type": "stop", "reason": None},
        ],
    }


@pytest.fixture
def cc(tenant):
    lead = LeadFactory(tenant=tenant, name="Acme Logistics",
                       website_text="Acme onboards new shippers by hand, with spreadsheets.")
    contact = ContactFactory(tenant=tenant, lead=lead, first_name="Dana", last_name="Smith",
                             timezone="America/Los_Angeles")
    campaign = CampaignFactory(tenant=tenant, allowed_link_domains=["shipfast.example"],
                               ai_instructions="Friendly, no buzzwords.")
    return ContactCampaignFactory(tenant=tenant, campaign=campaign, contact=contact)


def _analysis_answer():
    return chat_json({"summary": "Acme Logistics forwards freight.", "pains": ["manual onboarding"],
                      "angles": ["onboarding in days"], "fit_score": 80, "fit_reasons": ["manual work"]})


def _version(cc) -> CampaignPlanVersion:
    return CampaignPlanVersion.objects.get(contact_campaign=cc)


def test_valid_ai_plan_is_stored_as_ai_and_the_campaign_starts(stub, cc):
    stub.enqueue(_analysis_answer(), chat_json(ai_plan("Dana"), prompt_tokens=2000, completion_tokens=700))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "ai" and version.source_detail == ""
    cc.refresh_from_db()
    assert cc.status == ContactCampaign.Status.ACTIVE and cc.current_node_id == "intro"
    assert cc.current_plan_version_id == version.pk
    # Nulls of the strict output are stored as absent keys.
    assert "html" not in version.plan_json["nodes"][0]["message"]
    assert "after" not in version.plan_json["nodes"][0]["transitions"][0]
    plan_request = stub.requests[1]
    fmt = plan_request.json["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "plan" and fmt["json_schema"]["strict"]
    assert "startNodeId" in json.dumps(fmt["json_schema"]["schema"])
    shown = plan_request.text
    for fact in ("Dana", "Acme Logistics", "Book a 20-minute demo", "shipfast.example", "Friendly, no buzzwords.",
                 "America/Los_Angeles", "manual onboarding"):
        assert fact in shown, fact
    assert list(AICall.objects.filter(tenant=cc.tenant).order_by("id").values_list("purpose", "prompt_tokens")) == [
        ("lead_analysis", 100), ("plan", 2000)]


def test_invalid_plan_is_repaired_with_the_validator_errors_in_the_prompt(stub, cc):
    broken = ai_plan("Dana")
    broken["nodes"][1]["transitions"][0]["to"] = "nowhere"
    stub.enqueue(_analysis_answer(), chat_json(broken), chat_json(ai_plan("Dana")))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "ai_repaired"
    assert "nodes[1].transitions[0].to" in version.source_detail
    repair = stub.requests[2]
    assert repair.json["messages"][-2] == {"role": "assistant", "content": json.dumps(broken)}
    assert "nodes[1].transitions[0].to" in repair.messages[-1]["content"]
    assert "nowhere" in repair.messages[-1]["content"]
    assert AICall.objects.filter(tenant=cc.tenant, purpose="plan_repair").count() == 1


def test_unrepairable_plan_falls_back_with_the_reason_recorded(stub, cc):
    broken = ai_plan("Dana")
    broken["startNodeId"] = "missing"
    stub.enqueue(_analysis_answer(), chat_json(broken), chat_json(broken))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "fallback"
    assert "still invalid after one repair round" in version.source_detail
    assert "startNodeId" in version.source_detail
    assert len(stub.requests) == 3  # analysis, plan, one repair: never a second repair
    cc.refresh_from_db()
    assert cc.status == ContactCampaign.Status.ACTIVE and cc.current_node_id == "email_intro"


@pytest.mark.parametrize(("mutate", "expected_message"), [
    (lambda p: p["nodes"][0]["message"].update(text="Hi [First Name],\n\nQuick idea for your team. Demo?"),
     "placeholder like [First Name]"),
    (lambda p: p["nodes"][0]["message"].update(text="Hi {{first_name}}, a quick idea for Acme. Demo?"),
     "{{first_name}}"),
    (lambda p: p["nodes"][0]["message"].update(text="Hi Michael,\n\nA quick idea for Acme. Demo next week?"),
     "greeting names 'michael'"),
    (lambda p: p["nodes"][1]["message"].update(text="Hi Dana, see https://evil.example/x for a case study."),
     "links to 'evil.example'"),
    (lambda p: p["nodes"][0]["message"].update(subject="S" * 150), "keep it under 120"),
    (lambda p: p.update(timezone="Europe/Berlin"), "contact's timezone 'America/Los_Angeles'"),
])
def test_copy_guard_failures_count_as_invalid_and_get_the_repair_round(stub, cc, mutate, expected_message):
    bad = copy.deepcopy(ai_plan("Dana"))
    mutate(bad)
    stub.enqueue(_analysis_answer(), chat_json(bad), chat_json(ai_plan("Dana")))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "ai_repaired"
    assert expected_message in stub.requests[2].messages[-1]["content"]


def test_allowed_link_domain_and_its_subdomains_pass(stub, cc):
    plan = ai_plan("Dana")
    plan["nodes"][1]["message"]["text"] = "Hi Dana, the two-minute tour: https://www.shipfast.example/tour\n\nSam"
    stub.enqueue(_analysis_answer(), chat_json(plan))
    assert contact_campaign_generate_plan(contact_campaign=cc).source == "ai"


def test_ai_outage_falls_back_with_the_reason(stub, cc, settings):
    settings.AI_MAX_ATTEMPTS = 2
    stub.enqueue(_analysis_answer(), server_error(), server_error(502))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "fallback" and "AI call failed (server)" in version.source_detail


def test_without_a_key_the_fallback_planner_writes_the_plan(clean_ai_redis, settings, cc):
    settings.OPENAI_API_KEY = ""
    version = contact_campaign_generate_plan(contact_campaign=cc)
    assert version.source == "fallback" and "no OPENAI_API_KEY" in version.source_detail
    assert version.plan_json["nodes"][0]["message"]["text"].startswith("Hi Dana,")
    assert AICall.objects.count() == 0


def test_generation_is_idempotent(stub, cc):
    stub.enqueue(_analysis_answer(), chat_json(ai_plan("Dana")))
    assert contact_campaign_generate_plan(contact_campaign=cc) is not None
    assert contact_campaign_generate_plan(contact_campaign=cc) is None  # already planned and started
    assert CampaignPlanVersion.objects.filter(contact_campaign=cc).count() == 1
    assert len(stub.requests) == 2


def test_plan_inputs_come_from_campaign_contact_lead_and_sender(cc, settings, clean_ai_redis):
    settings.OPENAI_API_KEY = ""
    inputs = plan_inputs_for_contact_campaign(contact_campaign=cc)
    assert inputs.contact.first_name == "Dana" and inputs.contact.timezone == "America/Los_Angeles"
    assert inputs.brief.allowed_link_domains == ("shipfast.example",)
    assert inputs.brief.sender_name == cc.campaign.sender_identity.from_name
    assert inputs.lead.name == "Acme Logistics"
    assert "manual, spreadsheet-driven processes" in inputs.lead.pains  # the deterministic analysis, stored
    cc.contact.lead.refresh_from_db()
    assert cc.contact.lead.analysis_status == "done"


def test_plan_draft_is_deterministic_offline(settings):
    settings.OPENAI_API_KEY = ""
    from campaigns.fallback_planner import BriefInput, ContactInput, PlanInputs

    inputs = PlanInputs(brief=BriefInput(goal="Book a demo", offer="Fast onboarding"),
                        contact=ContactInput(first_name="Ana", timezone="Europe/Madrid"))
    assert plan_draft(inputs=inputs) == plan_draft(inputs=inputs)


def test_generate_plans_task_processes_a_batch_and_skips_gone_ids(stub, tenant):
    ccs = [ContactCampaignFactory(tenant=tenant, contact=ContactFactory(tenant=tenant, first_name=name,
                                                                          timezone="America/Los_Angeles"))
           for name in ("Ann", "Ben")]
    for c in ccs:  # each lead: one analysis call, then one plan call
        stub.enqueue(_analysis_answer(), chat_json(ai_plan(c.contact.first_name)))

    generate_plans([ccs[0].pk, 999_999_999, ccs[1].pk])

    assert sorted(CampaignPlanVersion.objects.filter(contact_campaign__in=ccs).values_list("source", flat=True)) == [
        "ai", "ai"]


def test_generate_plans_task_defers_the_rest_of_the_batch_when_the_tenant_cap_is_full(stub, settings, tenant):
    from outreach.ai.client import redis_client as _redis_client

    settings.AI_TENANT_BURST = 1
    settings.AI_TENANT_RATE_PER_MINUTE = 0.01  # no refill during the test
    settings.OPENAI_API_KEY = "sk-stub-test"
    ccs = [ContactCampaignFactory(tenant=tenant, contact=ContactFactory(
        tenant=tenant, first_name=name, lead=LeadFactory(tenant=tenant, analysis={"summary": "x"},
                                                          analysis_status="done")))
        for name in ("Ann", "Ben", "Cy")]
    stub.enqueue(chat_json(ai_plan("Ann")))
    broker = _redis_client()
    broker.delete("campaign_creation")
    try:
        generate_plans([c.pk for c in ccs])

        assert CampaignPlanVersion.objects.get(contact_campaign=ccs[0]).source == "ai"
        assert not CampaignPlanVersion.objects.filter(contact_campaign__in=ccs[1:]).exists()
        assert len(stub.requests) == 1  # the refused calls never reached the API
        messages = [json.loads(raw) for raw in broker.lrange("campaign_creation", 0, -1)]
        assert len(messages) == 1
        assert messages[0]["headers"]["task"] == "campaign_creation.generate_plans"
        assert messages[0]["headers"]["eta"] is not None  # a countdown of seconds, not a long timer
        body = json.loads(__import__("base64").b64decode(messages[0]["body"]))
        assert body[0] == [[ccs[1].pk, ccs[2].pk]] and body[1] == {"deferrals": 1}
    finally:
        broker.delete("campaign_creation")


def test_after_max_deferrals_the_fallback_writes_the_plan(stub, settings, tenant):
    from campaigns.ai_tasks import MAX_DEFERRALS

    settings.AI_TENANT_BURST = 0
    c = ContactCampaignFactory(tenant=tenant, contact=ContactFactory(
        tenant=tenant, first_name="Ann", lead=LeadFactory(tenant=tenant, analysis={"summary": "x"},
                                                          analysis_status="done")))

    generate_plans([c.pk], deferrals=MAX_DEFERRALS)

    version = CampaignPlanVersion.objects.get(contact_campaign=c)
    assert version.source == "fallback" and "AI call failed (busy)" in version.source_detail


def test_an_ai_plan_greeting_a_doctor_as_written_is_accepted_without_a_repair_call(stub, tenant):
    lead = LeadFactory(tenant=tenant, name="Acme Logistics", analysis={"summary": "x", "pains": ["manual onboarding"]},
                       analysis_status="done")
    contact = ContactFactory(tenant=tenant, lead=lead, first_name="Dr. Alan", last_name="Turing",
                             timezone="America/Los_Angeles")
    cc = ContactCampaignFactory(tenant=tenant, contact=contact,
                                campaign=CampaignFactory(tenant=tenant, allowed_link_domains=["shipfast.example"]))
    plan = ai_plan("Dr. Alan")
    stub.enqueue(chat_json(plan))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "ai" and len(stub.requests) == 1  # no repair round burnt on a correct greeting
    assert version.plan_json["nodes"][0]["message"]["text"].startswith("Hi Dr. Alan,")
