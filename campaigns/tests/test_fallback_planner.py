"""The built-in planner: valid for any contact, deterministic, personalised, and clean by the copy guards."""
from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.copy_guards import copy_problems
from campaigns.dsl import parse_plan, validate_plan
from campaigns.fallback_planner import BriefInput, ContactInput, LeadInput, PlanInputs, fallback_plan

BRIEF = BriefInput(goal="Book a 20-minute demo", offer="Onboarding automation that halves time-to-first-shipment",
                   sender_name="Sam Lee", sender_company="Shipfast", allowed_link_domains=("shipfast.example",))
CONTACT = ContactInput(first_name="Dana", last_name="Smith", title="Head of Operations",
                       timezone="America/Los_Angeles", language="en")
LEAD = LeadInput(name="Acme Logistics", domain="acme.example", pains=("slow onboarding of new shippers",),
                 angles=("cut onboarding from weeks to days",))

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
zones = st.sampled_from(["", "UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Mars/Olympus",
                         "not a zone", "Australia/Lord_Howe"])
languages = st.sampled_from(["", "en", "de", "de-AT", "DE_ch", "fr", "xx"])
inputs_strategy = st.builds(
    PlanInputs,
    brief=st.builds(BriefInput, goal=text, offer=text, ai_instructions=text, campaign_name=text, sender_name=text,
                    sender_company=text),
    contact=st.builds(ContactInput, first_name=text, last_name=text, title=text, email=text, timezone=zones,
                      language=languages),
    lead=st.builds(LeadInput, name=text, domain=text, summary=text, pains=st.lists(text, max_size=3).map(tuple),
                   angles=st.lists(text, max_size=3).map(tuple)),
)


def _sends(plan: dict) -> list[dict]:
    return [node for node in plan["nodes"] if node["type"] == "send"]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=inputs_strategy)
def test_fallback_plan_is_always_valid_and_deterministic(inputs):
    plan = fallback_plan(inputs)
    assert validate_plan(plan) == []
    assert fallback_plan(copy.deepcopy(inputs)) == plan  # same inputs, same plan
    assert 3 <= len(_sends(plan)) <= 4


@settings(max_examples=100, deadline=None, database=None)
@given(first=st.from_regex(r"[A-Z][a-zà-ÿ]{1,15}(-[A-Z][a-z]{1,10})?", fullmatch=True),
       company=st.from_regex(r"[A-Z][A-Za-z0-9&' ]{1,30}", fullmatch=True))
def test_fallback_copy_passes_the_copy_guards_for_real_looking_names(first, company):
    inputs = PlanInputs(brief=BRIEF, contact=ContactInput(first_name=first, timezone="Europe/Berlin"),
                        lead=LeadInput(name=company.strip() or "Acme"))
    plan = fallback_plan(inputs)
    assert copy_problems(plan=plan, first_name=first, allowed_link_domains=BRIEF.allowed_link_domains) == []


def test_fallback_plan_is_personalised_from_contact_lead_and_brief():
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD))
    intro = plan["nodes"][0]
    assert plan["startNodeId"] == intro["id"] == "email_intro"
    body = intro["message"]["text"]
    assert body.startswith("Hi Dana,")
    assert "Acme Logistics" in body and "Head of Operations" in body
    assert "onboarding automation that halves time-to-first-shipment" in body
    assert "slow onboarding of new shippers" in body
    assert "book a 20-minute demo" in body and body.rstrip().endswith("Sam Lee\nShipfast")
    assert "Acme Logistics" in intro["message"]["subject"]


def test_fallback_plan_timing_rules():
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD))
    assert plan["timezone"] == "America/Los_Angeles"
    assert plan["quietHours"] == {"start": "20:00", "end": "08:00"}
    assert plan["sendDays"] == ["mon", "tue", "wed", "thu", "fri"]
    parsed = parse_plan(plan)
    assert {node.id for node in parsed.nodes if node.type == "stop"} == {
        "stop_meeting_booked", "stop_interested", "stop_not_interested", "stop_replied", "stop_done"}
    for node in _sends(plan):
        events = [t["on"] for t in node["transitions"]]
        # A booked meeting, then classified answers, then any other human reply; an out-of-office does not
        # match `reply`.
        assert events[:4] == ["meeting_booked", "reply_positive", "reply_negative", "reply"]
        assert "reply_ooo" not in events
        assert "no_reply" in events


def test_fallback_plan_defaults_to_utc_for_a_missing_or_bad_timezone():
    for zone in ("", "Mars/Olympus", "  "):
        contact = ContactInput(first_name="Dana", timezone=zone)
        assert fallback_plan(PlanInputs(brief=BRIEF, contact=contact))["timezone"] == "UTC"


def test_fallback_plan_writes_german_for_german_contacts():
    contact = ContactInput(first_name="Jörg", timezone="Europe/Berlin", language="de-DE")
    body = fallback_plan(PlanInputs(brief=BRIEF, contact=contact, lead=LEAD))["nodes"][0]["message"]["text"]
    assert body.startswith("Hallo Jörg,") and "Viele Grüße" in body


def test_fallback_plan_without_a_name_greets_without_one_and_never_invents_a_slot():
    plan = fallback_plan(PlanInputs(brief=BriefInput(), contact=ContactInput(first_name="{{first_name}}")))
    body = plan["nodes"][0]["message"]["text"]
    assert "{" not in body and "}" not in body
    plan = fallback_plan(PlanInputs(brief=BriefInput(), contact=ContactInput()))
    assert plan["nodes"][0]["message"]["text"].startswith("Hi there,")
    assert validate_plan(plan) == []


def test_different_contacts_of_one_campaign_do_not_all_get_identical_subjects():
    subjects = {
        fallback_plan(PlanInputs(brief=BRIEF, contact=ContactInput(first_name=name), lead=LEAD))["nodes"][0]
        ["message"]["subject"]
        for name in ("Ann", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jan")
    }
    assert len(subjects) > 1


def test_fallback_plan_outlives_an_out_of_office_and_ends_on_a_human_reply():
    import datetime as dt

    from campaigns import engine

    plan = parse_plan(fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD)))
    t0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
    state = engine.enter_start(plan, t0).new_state
    state = engine.decide(plan, state, engine.EngineEvent(type="sent", occurred_at=t0, node_id="email_intro",
                                                          node_visit=1), t0).new_state

    def reply(kind: str, detail: dict | None = None) -> engine.EngineState:
        return engine.decide(plan, state, engine.EngineEvent(type=kind, occurred_at=t0, detail=detail or {}),
                             t0).new_state

    ooo = reply("reply_ooo", {"return_date": "2026-03-16"})
    assert (ooo.status, ooo.current_node_id) == ("active", "email_intro")
    for kind, reason in [("reply", "replied"), ("reply_neutral", "replied"), ("reply_positive", "interested"),
                         ("reply_negative", "not_interested")]:
        after = reply(kind)
        assert (after.status, after.stop_reason) == ("completed", reason), kind


@pytest.mark.django_db
def test_a_meeting_booked_by_an_integration_ends_the_built_in_plan():
    from campaigns.engine import EngineEvent
    from campaigns.services import contact_campaign_handle_event, contact_campaign_start, contact_campaign_store_plan
    from campaigns.tests.factories import ContactCampaignFactory
    from outreach import clock

    cc = ContactCampaignFactory()
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD))
    contact_campaign_store_plan(contact_campaign=cc, plan=plan, source="fallback")
    contact_campaign_start(contact_campaign=cc)

    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="meeting_booked", occurred_at=clock.now(), node_id=None, node_visit=None, outbound_message_id=None))

    cc.refresh_from_db()
    assert (cc.status, cc.current_node_id, cc.stop_reason) == ("completed", "stop_meeting_booked", "meeting_booked")
