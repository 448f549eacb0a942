"""Copy guards: what the validator cannot see in AI-written emails."""
from __future__ import annotations

import pytest

from campaigns.copy_guards import copy_problems

SECOND_TEXT = "Just bringing this up again: any thoughts on this?"


def plan_with(text: str, subject: str = "An idea for Acme", second_text: str = SECOND_TEXT):
    return {
        "startNodeId": "a",
        "nodes": [
            {"id": "a", "type": "send", "message": {"subject": subject, "text": text}},
            {"id": "b", "type": "send", "message": {"subject": "Re: idea", "text": second_text}},
            {"id": "z", "type": "stop"},
        ],
    }


def problems(text: str, **kwargs):
    params = {"first_name": "Dana", "last_name": "Smith", "allowed_link_domains": ["shipfast.example"]}
    params.update(kwargs)
    return copy_problems(plan=plan_with(text), **params)


def rules_found(text: str, rule: str, **kwargs):
    """The problems of one rule: a test of that rule is not about the others."""
    return [p for p in problems(text, **kwargs) if p["rule"] == rule]


def test_clean_copy_passes():
    assert problems("Hi Dana,\n\nA short idea for Acme: faster onboarding. Worth a call?\n\nSam") == []


@pytest.mark.parametrize("text", [
    "Hi {{first_name}}, a quick idea for you.",
    "Hi {first_name}, a quick idea for you.",
    "Hi Dana, a quick idea for [Company Name].",
    "Hi [First Name], a quick idea for you.",
    "Hi Dana, I noticed <company> is growing.",
    "Hi %FIRSTNAME%, a quick idea for you.",
    "Hi Dana, we helped XXX customers last year.",
])
def test_unfilled_placeholders_are_refused(text):
    found = problems(text)
    assert found and found[0]["path"] == "nodes[0].message.text"


@pytest.mark.parametrize(("text", "ok"), [
    ("Hi Dana, the tour: https://shipfast.example/tour", True),
    ("Hi Dana, the tour: https://app.shipfast.example/tour?x=1", True),
    ("Hi Dana, the tour: www.shipfast.example/tour", True),
    ("Hi Dana, the tour: https://shipfast.example.evil.example/tour", False),
    ("Hi Dana, the tour: http://bit.ly/abc", False),
    ("Hi Dana, write to sam@shipfast.example or mailto:sam@shipfast.example", True),
])
def test_links_only_to_allowed_domains(text, ok):
    assert (rules_found(text, "link_domain") == []) is ok


def test_no_links_at_all_when_no_domain_is_allowed():
    found = problems("Hi Dana, see https://shipfast.example", allowed_link_domains=[])
    assert "no links allowed" in found[0]["message"]


@pytest.mark.parametrize(("text", "ok"), [
    ("Hi Dana,\nan idea for your onboarding.", True),
    ("Hello dana! An idea for you.", True),
    ("Dear Ms. Smith,\nan idea for Dana's team.", True),
    ("Hi there, Dana mentioned onboarding.", True),
    ("Hi Michael,\nan idea for Dana.", False),
    ("Dear Mr. Jones, an idea for Dana.", False),
    ("Hallo Peter, eine Idee für Dana.", False),
])
def test_greeting_names_the_contact_and_nobody_else(text, ok):
    assert (rules_found(text, "greeting") == []) is ok


def test_first_email_must_use_the_known_first_name():
    found = problems("Hello,\n\nA short idea for Acme. Worth a call?")
    assert any("does not address the contact by name" in p["message"] for p in found)
    # Unknown first name: greeting without a name is right, and a named greeting is wrong.
    assert problems("Hi there,\n\nA short idea for Acme. Worth a call?", first_name="") == []
    assert problems("Hi Dana,\n\nA short idea for Acme. Worth a call?", first_name="") != []


def test_length_limits():
    assert any("keep it under" in p["message"] for p in copy_problems(
        plan=plan_with("Hi Dana, ok.", subject="x" * 121), first_name="Dana"))
    assert any("keep it under 3000" in p["message"] for p in problems("Hi Dana, " + "word " * 700))
    assert any("too short" in p["message"] for p in problems("Hi Dana"))


@pytest.mark.parametrize(("text", "first", "last"), [
    ("Hi Dr. Alan,\n\nA short idea for Acme. Worth a call?", "Dr. Alan", "Turing"),
    ("Hi Alan,\n\nA short idea for Acme. Worth a call?", "Dr. Alan", "Turing"),
    ("Dear Dr. Turing,\n\nA short idea for Acme. Worth a call?", "Dr. Alan", "Turing"),
    ("Dear Dr. Turing,\n\nA short idea for Acme. Worth a call?", "Alan", "Turing"),
    ("Guten Tag Frau Dr. Weber,\n\neine kurze Idee für Acme. Passt ein Gespräch?", "Anna", "Weber"),
    ("Beste dr. de Vries,\n\neen kort idee voor Acme. Zou een gesprek zinvol zijn?", "Dr. Sanne", "de Vries"),
    ("Hola, Ana:\n\nuna idea para Acme. ¿Tendría sentido una llamada?", "Ana", "García"),
    ("Gentile Dott. Rossi,\n\nun'idea per Acme. Avrebbe senso una chiamata?", "Marco", "Rossi"),
])
def test_a_correct_greeting_with_an_honorific_is_never_rejected(text, first, last):
    assert problems(text, first_name=first, last_name=last) == []


def test_an_honorific_does_not_let_another_name_through():
    found = problems("Hi Dr. Bob,\n\nA short idea for Acme. Worth a call?", first_name="Dr. Alan", last_name="Turing")
    assert found and found[0]["rule"] == "greeting" and found[0]["node"] == "a"


def test_every_problem_names_its_node_and_rule():
    found = problems("Hi {{first_name}}, see http://bit.ly/x. Call?")
    assert {(p["node"], p["rule"]) for p in found} >= {("a", "placeholder"), ("a", "link_domain")}
    assert all("(rule " in p["message"] and "node a)" in p["message"] for p in found)


def test_the_first_email_needs_the_name_or_company_and_one_fact_of_the_lead():
    kwargs = {"company": "Acme Logistics", "lead_facts": ("slow onboarding",)}
    assert problems("Hi Dana,\n\nA short idea on slow onboarding. Worth a call?", **kwargs) == []
    assert problems("Hello,\n\nA short idea for Acme Logistics. Worth a call?", **kwargs) == []  # the company names
    assert problems("Hi Dana,\n\nA short idea on how you onboard shippers. Worth a call?", **kwargs) == []
    found = copy_problems(plan=plan_with("Hi Dana,\n\nA short idea for your team. Worth a call?",
                                         subject="A quick idea"), first_name="Dana", **kwargs)
    assert [p["rule"] for p in found] == ["personalisation"] and "no fact of the lead" in found[0]["message"]


@pytest.mark.parametrize(("text", "rule"), [
    ("Hi Dana,\n\nAn idea for Acme.\n\nSam", "one_ask"),
    ("Hi Dana,\n\nIdea? For Acme? Now? Or later?", "one_ask"),
    ("Hi Dana,\n\nACT NOW: a GUARANTEED win for Acme!!! Click here. Call?", "spam_score"),
    ("Hallo Dana,\n\nich habe eine Idee für Sie und Ihr Team, die wir mit Ihnen besprechen wollen. Passt das?",
     "language"),
])
def test_ask_spam_and_language_rules(text, rule):
    assert rule in {p["rule"] for p in problems(text, language="en")}


def test_acronyms_and_one_exclamation_mark_are_not_spam():
    assert problems("Hi Dana,\n\nGDPR and SaaS at Acme: a quick idea! Worth a call?", language="en") == []


def test_an_english_email_for_a_german_contact_is_refused_but_unsupported_languages_are_not_judged():
    text = "Hi Dana,\n\nI have an idea for you and your team that we would like to share. Would that work?"
    found = problems(text, language="de-DE")
    assert {(p["node"], p["rule"]) for p in found} == {("a", "language"), ("b", "language")}  # b is English too
    assert problems(text, language="ja") == []


def test_a_word_limit_from_the_instructions_holds():
    text = "Hi Dana,\n\n" + "An idea for Acme. " * 20 + "Call?"
    assert [p["rule"] for p in problems(text, word_limit=40)] == ["word_limit"]


def test_a_short_company_name_counts_as_the_lead_fact():
    found = copy_problems(plan=plan_with("Hi Dana,\n\nA short idea for VW. Worth a call?", subject="A quick idea"),
                          first_name="Dana", company="VW", lead_facts=("security risk",))
    assert found == []
