"""The built-in planner: a deterministic, personalised 3-4 step email plan that always validates.

Used when no OPENAI_API_KEY is set (the demo, tests, offline installs) and when the AI's plan is still
invalid after its repair round. Pure: no database, no clock, no randomness. The same inputs give the
same plan (copy variants are picked by a hash of the inputs, so contacts of one campaign do not all
get word-for-word the same email, yet a re-run reproduces it).

The shape (docs/ai.md):

    email_intro --click within P3D--> email_hot --no_reply P4D--> stop_done
        |  no_reply after P4D
        v
    email_bump  --click within P3D--> email_hot
        |  no_reply after P5D
        v
    email_breakup --no_reply P5D--> stop_done

Every send node maps `reply_positive` and `reply_negative` to stop nodes with their own reason, then any
other human reply (`reply_neutral`, or a reply nobody classified) through a plain `reply` to
`stop_replied`: the plan ends as designed (`completed`, reason `replied`) instead of by the engine's
unhandled-reply rule. An out-of-office auto-reply does not match `reply` (docs/plan-dsl.md: `reply` is a
human reply), so it matches nothing here: the campaign goes on and the engine pushes the next send past
the return date. Every send node also has a `no_reply`, so no campaign can wait forever.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from campaigns.dsl import PLAN_VERSION
from campaigns.language_guess import base_language, leans_to
from campaigns.sequence_facts import (
    ACADEMIC,
    PersonName,
    ask_of,
    industry_of,
    offer_of,
    person_name,
    title_area,
    word_limit_of,
)
from campaigns.sequence_writer import Letter, copy_language, language_book, pick, render_subject, render_touch
from outreach.timezones import is_iana_timezone

QUIET_HOURS = {"start": "20:00", "end": "08:00"}
SEND_DAYS = ["mon", "tue", "wed", "thu", "fri"]
DEFAULT_TIMEZONE = "UTC"


# --- inputs (shared with campaigns.generation and the draft_plan command) ------------------------------


@dataclasses.dataclass(frozen=True)
class BriefInput:
    """What the campaign asks for (Campaign fields plus the sender's name)."""

    goal: str = ""
    offer: str = ""
    ai_instructions: str = ""
    allowed_link_domains: tuple[str, ...] = ()
    campaign_name: str = ""
    sender_name: str = ""
    sender_company: str = ""


@dataclasses.dataclass(frozen=True)
class ContactInput:
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    email: str = ""
    timezone: str = ""
    language: str = ""


@dataclasses.dataclass(frozen=True)
class LeadInput:
    """The company and its analysis (Lead.analysis), all optional."""

    name: str = ""
    domain: str = ""
    summary: str = ""
    pains: tuple[str, ...] = ()
    angles: tuple[str, ...] = ()
    fit_score: int | None = None


@dataclasses.dataclass(frozen=True)
class PlanInputs:
    brief: BriefInput
    contact: ContactInput
    lead: LeadInput = LeadInput()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True, default=str).encode()).hexdigest()


# --- helpers --------------------------------------------------------------------------------------------

# Characters that would look like an unfilled template slot if they came in with the data.
_SLOT_CHARS = re.compile(r"[{}\[\]<>]")
_WS = re.compile(r"\s+")


def clean(value: Any, *, limit: int = 200) -> str:
    """One-line, trimmed, bounded text safe to put into copy."""
    text = _WS.sub(" ", _SLOT_CHARS.sub("", str(value or ""))).strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-") or text[:limit]
    return text


def plan_timezone(value: str) -> str:
    value = (value or "").strip()
    return value if value and is_iana_timezone(value) else DEFAULT_TIMEZONE



def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def _phrase(text: str, language: str) -> str:
    """Free text as a phrase inside a sentence: no end punctuation; lower-case start except in German."""
    text = text.strip().rstrip(".!;:, ")
    return text if language == "de" else _lower_first(text)


# --- what the copy may say ------------------------------------------------------------------------------

# Angles the deterministic lead analysis derives from a title or a word list: they read as notes, not as
# something to tell a prospect ("What it would mean for a Directrice commerciale"), so the copy skips them.
_NOTE_ANGLES = re.compile(r"^(?:what it would mean for|shared ground:|an outside view on|how .+ addresses )", re.I)


def _pain_phrases(lead: LeadInput, language: str) -> list[str]:
    """The lead's pains in the contact's language: known pains translated, free text only when it fits."""
    known = {text.casefold(): key for key, text in language_book("en")["pains"].items()}
    translated = language_book(language)["pains"]
    phrases = []
    for pain in lead.pains:
        text = clean(pain, limit=160)
        key = known.get(text.casefold().rstrip("."))
        if key:
            phrases.append(translated[key])
        elif text and leans_to(text, language):
            phrases.append(_phrase(text, language))
    return phrases


def _free_text(text: str, language: str, *, limit: int) -> str:
    """Brief text that may go into a sentence of this language (a phrase), or "" when it is in another."""
    text = clean(text, limit=limit)
    if not text or not leans_to(text, language):
        return ""
    return _phrase(text, language)


def _ask_phrase(book: Mapping[str, Any], goal: str) -> str:
    ask = ask_of(goal)
    forms = book["ask"][ask.kind]
    return forms["minutes"].replace("$minutes", str(ask.minutes)) if ask.minutes else forms["plain"]


def _offer_phrase(book: Mapping[str, Any], brief: BriefInput) -> str:
    offer = offer_of(brief.offer, brief.ai_instructions, brief.goal)
    if offer is None:
        return ""
    forms = book[offer.kind]
    return forms["days"].replace("$days", str(offer.days)) if offer.days else forms["plain"]


def _greeting(book: Mapping[str, Any], name: PersonName) -> str:
    forms = book["greeting"]
    given, family = clean(name.given, limit=60), clean(name.family, limit=60)
    if name.honorific and family and (name.honorific in ACADEMIC or not given):
        return forms["formal"].replace("$honorific", book["honorifics"][name.honorific]).replace("$last", family)
    if given:
        return forms["first"].replace("$first", given.split(" ")[0] if len(given) > 30 else given)
    return forms["none"]


@dataclasses.dataclass(frozen=True)
class _Voice:
    """Everything the copy of one contact is written from, in the language it is written in."""

    language: str
    book: Mapping[str, Any]
    slots: dict[str, str]
    letter: Letter
    word_limit: int | None
    notes: tuple[str, ...]


def _slots(inputs: PlanInputs, language: str, name: PersonName) -> dict[str, str]:
    brief, contact, lead = inputs.brief, inputs.contact, inputs.lead
    book = language_book(language)
    pains = _pain_phrases(lead, language)
    area, industry = title_area(contact.title), industry_of(f"{lead.summary} {lead.name} {lead.domain}")
    angle = next((clean(a, limit=200) for a in lead.angles if not _NOTE_ANGLES.match(clean(a))), "")
    return {
        "first": clean(name.given, limit=60).split(" ")[0],
        "company": clean(lead.name, limit=80),
        "pain": pains[0] if pains else "",
        "pain2": pains[1] if len(pains) > 1 else (pains[0] if pains else ""),
        "area": book["areas"][area] if area else "",
        "industry": book["industries"][industry] if industry else "",
        "offer": _free_text(brief.offer, language, limit=300),
        "angle": _phrase(angle, language) if angle and language == "en" and leans_to(angle, "en") else "",
        "pilot": _offer_phrase(book, brief),
        "ask": _ask_phrase(book, brief.goal),
        "sender_company": clean(brief.sender_company, limit=80),
    }


def _voice(inputs: PlanInputs, seed: str) -> _Voice:
    requested = base_language(inputs.contact.language)
    language = copy_language(requested)
    book = language_book(language)
    name = person_name(inputs.contact.first_name, inputs.contact.last_name)
    slots = _slots(inputs, language, name)
    sender = [line for line in (clean(inputs.brief.sender_name, limit=80), slots["sender_company"]) if line]
    letter = Letter(greeting=_greeting(book, name), signature=(pick(book["signoff"], seed, "signoff"), *sender))
    word_limit = word_limit_of(inputs.brief.ai_instructions)
    notes = []
    if requested and requested != language:
        notes.append(f"no built-in copy for language {requested!r}: written in English")
    if inputs.brief.offer and not slots["offer"]:
        notes.append("the offer is written in another language than the contact's: not quoted")
    if slots["pilot"]:
        notes.append(f"offers {_offer_phrase(language_book('en'), inputs.brief)}")
    if word_limit:
        notes.append(f"each email at most {word_limit} words (ai_instructions)")
    return _Voice(language, book, slots, letter, word_limit, tuple(notes))


def _contact_seed(inputs: PlanInputs) -> str:
    """A seed per contact (and campaign): the same contact always gets the same copy."""
    contact = inputs.contact
    key = [contact.email.casefold(), contact.first_name, contact.last_name, contact.title, inputs.lead.name,
           inputs.brief.campaign_name, inputs.fingerprint() if not contact.email else ""]
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()


# --- the plan -------------------------------------------------------------------------------------------

# (node, touch of the language files, next node when nothing happens, after how long); every touch but the
# last moves to email_hot on a click.
SEQUENCE: list[tuple[str, str, str, str]] = [
    ("email_intro", "intro", "email_proof", "P3D"),
    ("email_proof", "proof", "email_question", "P4D"),
    ("email_question", "question", "email_value", "P4D"),
    ("email_value", "value", "email_breakup", "P5D"),
    ("email_breakup", "breakup", "stop_done", "P5D"),
]
HOT = ("email_hot", "hot", "email_breakup", "P4D")
CLICK_WINDOW = "P3D"


def _reply_transitions() -> list[dict[str, str]]:
    # First match wins: a booked meeting ends the sequence (no follow-up after a "yes" on the calendar),
    # then the classified answers, then every other human reply (never an out-of-office).
    return [
        {"on": "meeting_booked", "to": "stop_meeting_booked"},
        {"on": "reply_positive", "to": "stop_interested"},
        {"on": "reply_negative", "to": "stop_not_interested"},
        {"on": "reply", "to": "stop_replied"},
    ]


def _send_node(voice: _Voice, seed: str, step: tuple[str, str, str, str], subject: str) -> dict[str, Any]:
    node_id, touch, next_id, after = step
    transitions = _reply_transitions()
    if next_id != "stop_done" and node_id != HOT[0]:
        transitions.append({"on": "click", "within": CLICK_WINDOW, "to": HOT[0]})
    transitions.append({"on": "no_reply", "after": after, "to": next_id})
    text = render_touch(book=voice.book, touch=touch, slots=voice.slots, letter=voice.letter, seed=seed,
                        word_limit=voice.word_limit)
    return {"id": node_id, "type": "send", "channel": "email", "message": {"subject": subject, "text": text},
            "transitions": transitions}


def fallback_plan(inputs: PlanInputs) -> dict[str, Any]:
    """The built-in plan for these inputs (a DSL 1.0 document; always passes validate_plan).

    Five touches over 16 days (intro, proof point, question, a useful idea, break-up), each its own angle,
    follow-ups threaded under the intro's subject; a click moves the contact to a short "hot" follow-up
    with a concrete ask, then the break-up; any reply ends the sequence with its reason.
    """
    seed = _contact_seed(inputs)
    voice = _voice(inputs, seed)
    subject = clean(render_subject(book=voice.book, slots=voice.slots, seed=seed), limit=120)
    re_subject = clean(f"{voice.book['reply_prefix']} {subject}", limit=200)
    sends = [_send_node(voice, seed, step, subject if step[0] == "email_intro" else re_subject)
             for step in [*SEQUENCE, HOT]]
    metadata: dict[str, Any] = {"generator": "built-in planner", "language": voice.language,
                                "languageFallback": voice.language != (base_language(inputs.contact.language)
                                                                       or voice.language)}
    if base_language(inputs.contact.language):
        metadata["requestedLanguage"] = clean(base_language(inputs.contact.language), limit=16) or "unknown"
    if voice.notes:
        metadata["notes"] = [clean(note, limit=300) for note in voice.notes]
    return {
        "version": PLAN_VERSION,
        "timezone": plan_timezone(inputs.contact.timezone),
        "quietHours": dict(QUIET_HOURS),
        "sendDays": list(SEND_DAYS),
        "startNodeId": "email_intro",
        "nodes": sends + [
            {"id": "stop_meeting_booked", "type": "stop", "reason": "meeting_booked"},
            {"id": "stop_interested", "type": "stop", "reason": "interested"},
            {"id": "stop_not_interested", "type": "stop", "reason": "not_interested"},
            {"id": "stop_replied", "type": "stop", "reason": "replied"},
            {"id": "stop_done", "type": "stop", "reason": "completed"},
        ],
        "metadata": metadata,
    }
