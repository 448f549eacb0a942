"""The built-in planner: valid for any contact, deterministic, personalised, and clean by the copy guards."""
from __future__ import annotations

import copy
import dataclasses

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


def _main_path(plan: dict) -> list[dict]:
    """The sends a contact gets who never clicks nor replies: follow each no_reply from the start."""
    by_id = {node["id"]: node for node in plan["nodes"]}
    path, node = [], by_id[plan["startNodeId"]]
    while node["type"] == "send":
        path.append(node)
        node = by_id[next(t["to"] for t in node["transitions"] if t["on"] == "no_reply")]
    return path


def _days(duration: str) -> int:
    return int(duration.removeprefix("P").removesuffix("D"))


def _texts(plan: dict) -> str:
    return "\n".join(node["message"]["text"] for node in _sends(plan))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=inputs_strategy)
def test_fallback_plan_is_always_valid_and_deterministic(inputs):
    plan = fallback_plan(inputs)
    assert validate_plan(plan) == []
    assert fallback_plan(copy.deepcopy(inputs)) == plan  # same inputs, same plan
    assert len(_main_path(plan)) == 5


@settings(max_examples=100, deadline=None, database=None)
@given(first=st.from_regex(r"[A-Z][a-zà-ÿ]{1,15}(-[A-Z][a-z]{1,10})?", fullmatch=True),
       company=st.from_regex(r"[A-Z][A-Za-z0-9&' ]{1,30}", fullmatch=True),
       language=st.sampled_from(["en", "de", "fr", "es", "pt", "nl", "it", "ja"]))
def test_fallback_copy_passes_the_copy_guards_for_real_looking_names(first, company, language):
    inputs = PlanInputs(brief=BRIEF, contact=ContactInput(first_name=first, timezone="Europe/Berlin",
                                                          language=language),
                        lead=LeadInput(name=company.strip() or "Acme", pains=("slow onboarding",)))
    plan = fallback_plan(inputs)
    assert copy_problems(plan=plan, first_name=first, allowed_link_domains=BRIEF.allowed_link_domains,
                         company=company.strip() or "Acme", lead_facts=("slow onboarding",),
                         language=language) == []


def test_five_touches_over_two_to_three_weeks_each_with_its_own_angle_threaded_under_the_intro():
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD))
    path = _main_path(plan)
    assert [node["id"] for node in path] == ["email_intro", "email_proof", "email_question", "email_value",
                                             "email_breakup"]
    span = sum(_days(next(t["after"] for t in node["transitions"] if t["on"] == "no_reply")) for node in path[:-1])
    assert 14 <= span <= 21
    bodies = [node["message"]["text"] for node in path]
    assert len(set(bodies)) == 5
    intro_subject = path[0]["message"]["subject"]
    assert all(node["message"]["subject"] == f"Re: {intro_subject}" for node in path[1:])
    assert "?" in path[2]["message"]["text"]  # the question touch asks one
    assert "won't write again" in bodies[-1] or "not write again" in bodies[-1] or "close" in bodies[-1]


def test_a_click_leads_to_the_hot_follow_up_and_a_positive_reply_ends_the_sequence():
    import datetime as dt

    from campaigns import engine

    plan = parse_plan(fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD)))
    t0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
    state = engine.enter_start(plan, t0).new_state
    state = engine.decide(plan, state, engine.EngineEvent(type="sent", occurred_at=t0, node_id="email_intro",
                                                          node_visit=1), t0).new_state
    clicked = engine.decide(plan, state, engine.EngineEvent(type="click", occurred_at=t0), t0).new_state
    assert clicked.current_node_id == "email_hot"
    hot = plan.node("email_hot")
    assert [t.to for t in hot.transitions if t.on == "no_reply"] == ["email_breakup"]
    positive = engine.decide(plan, state, engine.EngineEvent(type="reply_positive", occurred_at=t0), t0).new_state
    assert (positive.status, positive.stop_reason) == ("completed", "interested")


def test_fallback_plan_is_personalised_from_contact_lead_and_brief():
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=CONTACT, lead=LEAD))
    intro = plan["nodes"][0]
    assert plan["startNodeId"] == intro["id"] == "email_intro"
    body = intro["message"]["text"]
    assert body.startswith("Hi Dana,")
    assert "Acme Logistics" in body and "slow onboarding of new shippers" in body
    assert "onboarding automation that halves time-to-first-shipment" in body
    assert "a 20-minute demo" in body and body.rstrip().endswith("Sam Lee\nShipfast")
    assert "operations teams" in _texts(plan)  # the title as a role: "Head of Operations" works in operations
    assert plan["metadata"] == {"generator": "built-in planner", "language": "en", "languageFallback": False,
                                "requestedLanguage": "en"}


@pytest.mark.parametrize("title", ["Procurement", "Head of Procurement", "Einkauf"])
def test_a_title_is_used_as_a_role_never_pasted_into_a_sentence(title):
    contact = ContactInput(first_name="Dana", title=title, language="en")
    texts = _texts(fallback_plan(PlanInputs(brief=BRIEF, contact=contact, lead=LEAD)))
    assert title not in texts and " as " + title not in texts
    assert "procurement teams" in texts


def test_honorifics_are_kept_as_people_write_them():
    plan = fallback_plan(PlanInputs(brief=BRIEF, lead=LEAD, contact=ContactInput(
        first_name="Dr. Alan", last_name="Turing", language="en")))
    assert _sends(plan)[0]["message"]["text"].startswith("Dear Dr. Turing,")
    german = fallback_plan(PlanInputs(brief=BRIEF, lead=LEAD, contact=ContactInput(
        first_name="Prof. Anna", last_name="Schmidt", language="de")))
    assert _sends(german)[0]["message"]["text"].startswith("Guten Tag Prof. Schmidt,")
    no_last = fallback_plan(PlanInputs(brief=BRIEF, lead=LEAD, contact=ContactInput(first_name="Dr. Alan")))
    assert _sends(no_last)[0]["message"]["text"].startswith("Hi Alan,")
    for p, first, last in [(plan, "Dr. Alan", "Turing"), (german, "Prof. Anna", "Schmidt"), (no_last, "Dr. Alan", "")]:
        assert copy_problems(plan=p, first_name=first, last_name=last,
                             allowed_link_domains=BRIEF.allowed_link_domains) == []


@pytest.mark.parametrize(("language", "greeting", "ask", "signoffs"), [
    ("de-DE", "Hallo Jörg,", "eine 20-minütige Demo", ("Viele Grüße", "Beste Grüße", "Freundliche Grüße")),
    ("fr", "Bonjour Jörg,", "une démo de 20 minutes", ("Bien cordialement,", "Cordialement,", "Belle journée,")),
    ("es", "Hola, Jörg:", "una demo de 20 minutos", ("Un saludo,", "Saludos cordiales,", "Gracias,")),
    ("pt-BR", "Olá, Jörg,", "uma demonstração de 20 minutos", ("Um abraço,", "Atenciosamente,", "Obrigado,")),
    ("nl", "Hoi Jörg,", "een demo van 20 minuten", ("Met vriendelijke groet,", "Groet,", "Hartelijke groet,")),
    ("it", "Buongiorno Jörg,", "una demo di 20 minuti", ("Cordiali saluti,", "Un saluto,", "Grazie,")),
])
def test_each_supported_language_gets_its_own_copy_and_never_the_english_brief(language, greeting, ask, signoffs):
    contact = ContactInput(first_name="Jörg", title="Head of Sales", timezone="Europe/Berlin", language=language)
    plan = fallback_plan(PlanInputs(brief=BRIEF, contact=contact, lead=LEAD))
    intro = _sends(plan)[0]["message"]["text"]
    assert intro.startswith(greeting) and any(s in intro for s in signoffs)
    texts = _texts(plan)
    assert ask in texts
    assert "Book a 20-minute demo" not in texts and "halves time-to-first-shipment" not in texts
    assert "Head of Sales" not in texts
    assert plan["metadata"]["language"] == language[:2] and plan["metadata"]["languageFallback"] is False


def test_other_languages_fall_back_to_english_and_say_so_in_the_metadata():
    for language in ("ja", "no", "ar"):
        plan = fallback_plan(PlanInputs(brief=BRIEF, lead=LEAD, contact=ContactInput(first_name="Yuki",
                                                                                     language=language)))
        assert _sends(plan)[0]["message"]["text"].startswith("Hi Yuki,")
        meta = plan["metadata"]
        assert (meta["language"], meta["requestedLanguage"], meta["languageFallback"]) == ("en", language, True)
        assert any("written in English" in note for note in meta["notes"])


@pytest.mark.parametrize(("language", "pilot"), [
    ("en", "14-day pilot"), ("de", "14-tägiges Pilotprojekt"), ("fr", "pilote de 14 jours"),
    ("es", "piloto de 14 días"), ("pt", "piloto de 14 dias"), ("nl", "pilot van 14 dagen"),
    ("it", "pilota di 14 giorni"),
])
def test_the_ai_instructions_offer_appears_and_their_word_limit_holds(language, pilot):
    brief = dataclasses.replace(BRIEF, ai_instructions="Mention our 14-day pilot. Keep every email under 60 words.")
    contact = ContactInput(first_name="Dana", last_name="Smith", title="VP Sales", language=language)
    plan = fallback_plan(PlanInputs(brief=brief, contact=contact, lead=LEAD))
    assert pilot in _texts(plan)
    assert all(len(node["message"]["text"].split()) <= 60 for node in _sends(plan))
    assert "each email at most 60 words (ai_instructions)" in plan["metadata"]["notes"]


def test_twenty_varied_contacts_get_twenty_distinct_first_emails():
    people = [("Ann", "VP Sales", "en"), ("Ben", "CFO", "en"), ("Cleo", "Head of Operations", "fr"),
              ("Dev", "CTO", "en"), ("Eva", "Einkaufsleiterin", "de"), ("Finn", "Founder", "nl"),
              ("Gus", "Marketing Manager", "es"), ("Hana", "HR Director", "en"), ("Ivo", "Procurement", "it"),
              ("Jan", "Customer Success Lead", "de"), ("Kai", "", "en"), ("Lea", "Directrice commerciale", "fr"),
              ("Mo", "COO", "pt"), ("Nia", "Head of IT", "en"), ("Oli", "Owner", "es"), ("Pia", "CEO", "it"),
              ("Quin", "Sales Director", "nl"), ("Rui", "Diretor de Vendas", "pt"), ("Sue", "Buyer", "en"),
              ("Tom", "Controller", "de")]
    leads = [LEAD, LeadInput(name="Nordwerk", summary="A software platform for factories.",
                             pains=("manual, spreadsheet-driven processes", "scattered data and slow reporting")),
             LeadInput(name="Clinica Sol", summary="A private hospital group.", pains=("keeping up with compliance "
                                                                                       "requirements",))]
    intros, subjects = set(), set()
    for index, (first, title, language) in enumerate(people):
        contact = ContactInput(first_name=first, title=title, language=language, email=f"{first.lower()}@x.example")
        plan = fallback_plan(PlanInputs(brief=BRIEF, contact=contact, lead=leads[index % 3]))
        intros.add(_sends(plan)[0]["message"]["text"])
        subjects.add(_sends(plan)[0]["message"]["subject"].replace(first, "").replace(leads[index % 3].name, ""))
    assert len(intros) == 20
    assert len(subjects) >= 6


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


def test_fallback_plan_without_a_name_greets_without_one_and_never_invents_a_slot():
    plan = fallback_plan(PlanInputs(brief=BriefInput(), contact=ContactInput(first_name="{{first_name}}")))
    body = plan["nodes"][0]["message"]["text"]
    assert "{" not in body and "}" not in body
    plan = fallback_plan(PlanInputs(brief=BriefInput(), contact=ContactInput()))
    assert plan["nodes"][0]["message"]["text"].startswith("Hi there,")
    assert validate_plan(plan) == []


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
