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
    assert (problems(text) == []) is ok


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
    assert (problems(text) == []) is ok


def test_first_email_must_use_the_known_first_name():
    found = problems("Hello,\n\nA short idea for Acme. Worth a call?")
    assert any("does not address the contact by name" in p["message"] for p in found)
    # Unknown first name: greeting without a name is right, and a named greeting is wrong.
    assert problems("Hi there,\n\nA short idea for Acme.", first_name="") == []
    assert problems("Hi Dana,\n\nA short idea for Acme.", first_name="") != []


def test_length_limits():
    assert any("keep it under" in p["message"] for p in copy_problems(
        plan=plan_with("Hi Dana, ok.", subject="x" * 121), first_name="Dana"))
    assert any("keep it under 3000" in p["message"] for p in problems("Hi Dana, " + "word " * 700))
    assert any("too short" in p["message"] for p in problems("Hi Dana"))
