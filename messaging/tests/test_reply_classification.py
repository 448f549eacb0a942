"""Reply classification: the rule-based classifier on a corpus, stop requests, OOO return dates, and the
AI classifier against the stub (with its fall back to the rules)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from messaging.inbound import (
    classify_reply,
    classify_reply_rules,
    extract_return_date,
    normalise_headers,
    read_return_date,
    strip_quoted,
)
from outreach.ai.models import AICall
from simulators.openai_stub.server import chat_json, chat_text, server_error
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures
from simulators.sendgrid.inbound import REPLY_TEXTS as SIMULATOR_REPLY_TEXTS

CORPUS = json.loads((Path(__file__).parent / "replies_corpus.json").read_text(encoding="utf-8"))["replies"]
DEFAULT_RECEIVED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _rules(item: dict):
    headers = normalise_headers(item["headers"])
    received = None if "date" in headers else DEFAULT_RECEIVED
    return classify_reply(tenant=None, subject=item["subject"], text=item["text"], headers=headers,
                          received_at=received)


@pytest.fixture(autouse=True)
def _no_ai_key(settings):
    settings.OPENAI_API_KEY = ""  # the corpus measures the offline classifier (the stub tests set their own)


def test_corpus_has_at_least_30_replies_in_at_least_two_languages():
    assert len(CORPUS) >= 30
    assert {item["lang"] for item in CORPUS} >= {"en", "de"}
    assert {item["expected"]["label"] for item in CORPUS} == {"positive", "negative", "neutral", "ooo"}


def test_rule_classifier_accuracy_on_the_corpus():
    results = [(item, _rules(item)) for item in CORPUS]
    correct = [item for item, got in results if got.label == item["expected"]["label"]]
    accuracy = len(correct) / len(results)
    held_out = [(item, got) for item, got in results if item.get("held_out")]
    held_out_accuracy = sum(got.label == item["expected"]["label"] for item, got in held_out) / len(held_out)
    misses = [f"#{item['id']} {item['expected']['label']}->{got.label}" for item, got in results
              if got.label != item["expected"]["label"]]
    print(f"\nrule-based reply classifier: accuracy {accuracy:.3f} ({len(correct)}/{len(results)}); "
          f"held-out part {held_out_accuracy:.3f} ({len(held_out)} replies); misses: {', '.join(misses) or 'none'}")
    # The bar. The rules are the offline fallback; most of the corpus was written alongside them, the
    # `held_out` part afterwards and never tuned against, so it is the honest estimate of new text (0.75
    # when measured). What a wrong label costs decides the bar: every human reply stops the plan whether
    # it is read as positive, negative or neutral (they differ only in the stop reason an operator sees),
    # so confusions among those three are cheap; 0.85 overall keeps them rare. The expensive mistakes
    # are asserted exactly below: human vs auto-reply, and stop requests.
    assert accuracy >= 0.85
    assert held_out_accuracy >= 0.6


def test_auto_replies_and_human_replies_are_never_confused_on_the_corpus():
    # An OOO read as human would end the campaign; a human read as OOO would keep mailing someone who answered.
    wrong = [item["id"] for item in CORPUS if (_rules(item).label == "ooo") != (item["expected"]["label"] == "ooo")]
    assert wrong == []


def test_stop_requests_are_detected_without_false_alarms_on_the_corpus():
    wrong = [item["id"] for item in CORPUS if _rules(item).stop_request != item["expected"]["stop_request"]]
    assert wrong == []
    assert sum(item["expected"]["stop_request"] for item in CORPUS) >= 8


def test_return_dates_on_the_corpus():
    dated = [item for item in CORPUS if "return_date" in item["expected"]]
    assert len(dated) >= 8
    for item in dated:
        got = _rules(item).return_date
        assert (got.isoformat() if got else None) == item["expected"]["return_date"], item["id"]


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm back on 12 December.", "2026-12-12"),
    ("I am out of office, returning 2026-12-14.", "2026-12-14"),
    ("Ich bin zurück am 14.12.", "2026-12-14"),
    ("Out until December 11th, 2026.", "2026-12-12"),
    ("Back on Monday, January 4.", "2027-01-04"),
    ("Je serai de retour le 7 janvier.", "2027-01-07"),
    ("Regreso el 9 de diciembre.", "2026-12-09"),
    ("I'm out of the office this week, back Monday.", "2026-12-07"),  # 1 Dec 2026 is a Tuesday
    ("Ich bin bis 23/12/2026 nicht erreichbar.", "2026-12-24"),
    ("Out of office. I will reply when I'm back.", None),
])
def test_return_date_formats(text, expected):
    got = extract_return_date(text, today=dt.date(2026, 12, 1))
    assert (got.isoformat() if got else None) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Out of office until 31.12.9999.", None),  # once an OverflowError: 9999-12-31 + the day after "until"
    ("I'm back on 9999-12-31.", None),
    ("Back on 2999-01-01.", None),  # more than a year ahead: not believed
    # Issue 11: the parser believes dates up to a year ahead ("jusqu'au 5 janvier" read in March is next
    # January, not dropped); the engine's MAX_RETURN_DATE_AHEAD decides whether such a pause is honoured.
    ("Back on 2027-12-03.", None),  # 1 Dec 2026 + 367 days: too far
    ("Back on 2027-12-02.", "2027-12-02"),  # exactly 366 days ahead: kept
    ("I was away until 2026-11-20.", None),  # already back
    ("Back on 2031-01-05, otherwise from 2026-12-14.", "2026-12-14"),  # the implausible cue is skipped
])
def test_return_dates_in_the_past_or_more_than_180_days_ahead_are_ignored(text, expected):
    got = extract_return_date(text, today=dt.date(2026, 12, 1))
    assert (got.isoformat() if got else None) == expected


@pytest.mark.parametrize(("text", "expected"), [
    # 1 Dec 2026 is a Tuesday. "until" dates mean back the day after.
    ("Out of office until Monday, December 7.", "2026-12-08"),  # weekday and date agree: nothing to check
    ("Out of office until Monday, December 8.", "2026-12-09"),  # Dec 8 is a Tuesday: the date is the later
    ("Back on Friday, 9 December.", "2026-12-11"),  # Dec 9 is a Wednesday: the nearest Friday (11th) is later
    ("Back on Friday, 7 December.", "2026-12-07"),  # Dec 7 is a Monday: the nearest Friday (4th) is earlier
    ("Ich bin ab Montag, 15.12. wieder da.", "2026-12-15"),  # Dec 15 is a Tuesday: the date is the later
])
def test_a_weekday_that_contradicts_its_date_keeps_the_later_and_asks_for_review(text, expected):
    read = read_return_date(text, today=dt.date(2026, 12, 1))
    assert read.date.isoformat() == expected
    if "December 7." in text:
        assert read.review_reason == ""
    else:
        assert "weekday contradicts date" in read.review_reason


def test_return_date_extraction_survives_the_ends_of_the_calendar():
    assert extract_return_date("Back Monday.", today=dt.date.max) is None
    assert extract_return_date("Back on 3 January.", today=dt.date.min) is None


@pytest.mark.parametrize("text", [
    "Please unsubscribe me.",
    "remove me from this list",
    "STOP",
    "Can you stop emailing me?",
    "Bitte nicht mehr kontaktieren.",
    "Bitte melden Sie mich ab.",
    "Merci de me désabonner.",
    "Por favor, darme de baja.",
])
def test_stop_request_phrases(text):
    result = classify_reply(tenant=None, subject="Re: hi", text=text, headers={})
    assert result.stop_request and result.label == "negative"


def test_quoted_history_and_signature_do_not_count():
    text = ("Not interested, sorry.\n\n-- \nDana Smith | Unsubscribe from our newsletter: https://acme.example/u\n\n"
            "On Tue, 1 Dec 2026 at 09:12, Sam <sam@shipfast.example> wrote:\n> Interested? Let's talk!\n"
            "> To unsubscribe, reply STOP")
    assert strip_quoted(text) == "Not interested, sorry."
    result = classify_reply(tenant=None, subject="Re: hi", text=text, headers={})
    assert (result.label, result.stop_request) == ("negative", False)


def test_auto_reply_header_makes_an_auto_reply_but_a_stop_request_in_it_still_counts():
    # Issue 11 ("stop wins"): this test used to assert that an auto-reply is never a stop request.
    result = classify_reply(tenant=None, subject="Re: hi", text="Please remove me from this list",
                            headers="Auto-Submitted: auto-replied\r\nPrecedence: bulk\r\n")
    assert (result.kind, result.stop_request) == ("auto_reply", True)
    assert classify_reply_rules(subject="", text="hello", headers={"auto-submitted": "no"},
                                today=dt.date(2026, 1, 1)).label != "ooo"


def test_gibberish_is_neutral_with_low_confidence():
    result = classify_reply(tenant=None, subject="", text="ok", headers=None)
    assert result.label == "neutral" and result.confidence < 0.5


# --- the AI classifier --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ai_classifier_used_when_a_key_is_set(stub, tenant):
    stub.enqueue(chat_json({"label": "positive", "confidence": 0.91, "stop_request": False, "return_date": None},
                           prompt_tokens=321, completion_tokens=12))

    result = classify_reply(tenant=tenant, subject="Re: idea", text="Let's do Thursday.\n> old quoted text",
                            headers={}, received_at=DEFAULT_RECEIVED)

    assert (result.label, result.confidence, result.source) == ("positive", 0.91, "ai")
    request = stub.requests[0]
    assert request.json["response_format"]["json_schema"]["name"] == "reply_classification"
    assert "Let's do Thursday." in request.text and "old quoted text" not in request.text
    assert AICall.objects.get(tenant=tenant).purpose == "reply_classification"


@pytest.mark.django_db
def test_ai_ooo_without_a_date_gets_the_rules_date_and_rules_stop_request_is_kept(stub, tenant):
    stub.enqueue(
        chat_json({"label": "ooo", "confidence": 0.8, "stop_request": False, "return_date": "sometime"}),
        chat_json({"label": "neutral", "confidence": 0.6, "stop_request": False, "return_date": None}),
    )
    ooo = classify_reply(tenant=tenant, subject="Re", text="Away, back on 14 December.", headers={},
                         received_at=DEFAULT_RECEIVED)
    assert ooo.return_date == dt.date(2026, 12, 14)

    stop = classify_reply(tenant=tenant, subject="Re", text="Who is this? Unsubscribe me.", headers={},
                          received_at=DEFAULT_RECEIVED)
    assert (stop.label, stop.stop_request) == ("negative", True)


@pytest.mark.django_db
@pytest.mark.parametrize("model_date", ["9999-12-31", "2999-01-01", "2026-11-01"])
def test_an_ai_return_date_in_the_past_or_over_180_days_ahead_gives_way_to_the_rules(stub, tenant, model_date):
    stub.enqueue(chat_json({"label": "ooo", "confidence": 0.9, "stop_request": False, "return_date": model_date}))
    ooo = classify_reply(tenant=tenant, subject="Re", text="Away, back on 14 December.", headers={},
                         received_at=DEFAULT_RECEIVED)
    assert (ooo.label, ooo.source, ooo.return_date) == ("ooo", "ai", dt.date(2026, 12, 14))


@pytest.mark.django_db
def test_ai_failure_falls_back_to_rules(stub, tenant, settings):
    settings.AI_MAX_ATTEMPTS = 2
    stub.enqueue(server_error(), server_error(), chat_text("{not json"))

    first = classify_reply(tenant=tenant, subject="Re", text="Not interested, thanks.", headers={})
    second = classify_reply(tenant=tenant, subject="Re", text="Sounds great, let's talk.", headers={})

    assert (first.label, first.source) == ("negative", "rules")
    assert (second.label, second.source) == ("positive", "rules")
    assert len(stub.requests) == 3


@pytest.mark.django_db
def test_auto_reply_headers_skip_the_ai_call(stub, tenant):
    result = classify_reply(tenant=tenant, subject="Automatic reply", text="I am out of the office.",
                            headers={"Auto-Submitted": "auto-replied"})
    assert result.label == "ooo" and stub.requests == []


@pytest.mark.parametrize("intent, template", [
    (intent, template) for intent, templates in SIMULATOR_REPLY_TEXTS.items() for template in templates
])
def test_the_offline_classifier_reads_every_simulator_reply_as_the_simulator_means_it(intent, template):
    # The demo and the end-to-end test drive the engine with these replies: a misread one sends a
    # contact down the wrong branch there.
    text = template.format(first="Sam", me="Dana", return_date="December 14, 2026")
    got = classify_reply_rules(subject="Re: Quick idea", text=text, headers={}, today=dt.date(2026, 12, 1))
    if intent == "stop":
        assert got.stop_request
    else:
        assert got.label == intent, got.reasons
