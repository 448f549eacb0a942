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
from typing import Any

from campaigns.dsl import PLAN_VERSION
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


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".!;:, ")
    return text


def _pick(options: list[str], seed: str, salt: str) -> str:
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return options[digest[0] % len(options)]


_GOAL_VERBS = {
    "book", "schedule", "get", "set", "have", "see", "talk", "discuss", "explore", "meet", "start", "try", "run",
    "arrange", "find", "show", "walk", "share", "hop", "jump", "chat", "learn", "compare", "review", "plan",
}


def _is_german(contact: ContactInput) -> bool:
    return (contact.language or "").lower().replace("_", "-").split("-")[0] == "de"


# --- copy -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Copy:
    intro_subject: str
    intro_text: str
    hot_text: str
    bump_text: str
    breakup_text: str


def _english_subject(first: str, company: str, seed: str) -> str:
    subject_options = [f"Quick idea for {company}", f"An idea for {company}", f"{company} and a quick question"] \
        if company else ["A quick idea", "Quick question", "An idea for your team"]
    if first and company:
        subject_options.append(f"{first}, a quick idea for {company}")
    return clean(_pick(subject_options, seed, "subject"), limit=120)


def _english_pitch(*, where: str, pain: str, offer: str, angle: str) -> list[str]:
    """The pain, the offer and the lead's angle, each a line when known."""
    lines = []
    if pain:
        lines.append(f"Teams in a similar spot often mention {_lower_first(pain)}.")
    if offer:
        lead_in = "We help with exactly that" if pain else "In short"
        lines.append(f"{lead_in}: {_lower_first(offer)}.")
    if angle and offer[:30].lower() not in angle.lower():  # a derived angle may only restate the offer
        lines.append(f"For {where} in particular: {_lower_first(angle)}.")
    return lines


def _english_cta(goal: str) -> str:
    if goal and goal.split(" ", 1)[0].lower() in _GOAL_VERBS:
        return f"Would it make sense to {_lower_first(goal)}?"
    if goal:
        return f"What I have in mind: {_lower_first(goal)}. Would a short call next week work?"
    return "Would a short call next week be worth it?"


def _english_copy(inputs: PlanInputs, seed: str) -> _Copy:
    brief, contact, lead = inputs.brief, inputs.contact, inputs.lead
    first = clean(contact.first_name, limit=60)
    company = clean(lead.name, limit=80)
    title = clean(contact.title, limit=80)
    offer = _sentence(clean(brief.offer, limit=400))
    goal = _sentence(clean(brief.goal, limit=200))
    pain = _sentence(clean(lead.pains[0], limit=160)) if lead.pains else ""
    angle = _sentence(clean(lead.angles[0], limit=200)) if lead.angles else ""
    sender = clean(brief.sender_name, limit=80)
    sender_company = clean(brief.sender_company, limit=80)

    greeting = f"Hi {first}," if first else "Hi there,"
    where = company or "your team"
    subject = _english_subject(first, company, seed)
    role = f" as {title}" if title else ""
    opener = _pick(
        [f"I came across {where} and thought of you{role}.",
         f"I was reading about {where} and wanted to reach you{role}."],
        seed, "opener",
    )
    lines = [greeting, "", opener, *_english_pitch(where=where, pain=pain, offer=offer, angle=angle),
             "", _english_cta(goal)]
    signature = ["", "Best regards,"] + ([sender] if sender else []) + ([sender_company] if sender_company else [])
    intro = "\n".join(lines + signature)

    hot = "\n".join([
        greeting, "",
        "Thanks for taking a look. Happy to walk you through how this would work"
        + (f" at {company}" if company else "") + ".",
        "", "Do you have 20 minutes this week or next?",
    ] + signature)
    bump = "\n".join([
        greeting, "",
        "Just bringing this back to the top of your inbox"
        + (f" in case {_lower_first(offer)} is on your list this quarter." if offer else "."),
        "", "Is this something you look after, or is there someone better to talk to?",
    ] + signature)
    breakup = "\n".join([
        greeting, "",
        "I haven't heard back, so I'll assume the timing isn't right and won't follow up again.",
        "If it becomes relevant later, just reply to this email.",
    ] + signature)
    return _Copy(subject, intro, hot, bump, breakup)


def _german_copy(inputs: PlanInputs, seed: str) -> _Copy:
    brief, contact, lead = inputs.brief, inputs.contact, inputs.lead
    first = clean(contact.first_name, limit=60)
    company = clean(lead.name, limit=80)
    title = clean(contact.title, limit=80)
    offer = _sentence(clean(brief.offer, limit=400))
    goal = _sentence(clean(brief.goal, limit=200))
    pain = _sentence(clean(lead.pains[0], limit=160)) if lead.pains else ""
    sender = clean(brief.sender_name, limit=80)
    sender_company = clean(brief.sender_company, limit=80)

    greeting = f"Hallo {first}," if first else "Guten Tag,"
    subject = _pick([f"Kurze Idee für {company}", f"Eine Frage zu {company}"] if company
                    else ["Kurze Idee", "Eine kurze Frage"], seed, "subject")
    subject = clean(subject, limit=120)
    role = f" als {title}" if title else ""
    opener = f"ich bin auf {company} gestoßen und dachte dabei an Sie{role}." if company else (
        f"ich melde mich mit einer kurzen Idee für Sie{role}.")
    lines = [greeting, "", opener]
    if pain:
        lines.append(f"Viele Teams in einer ähnlichen Lage nennen: {pain}.")
    if offer:
        lines.append(f"Kurz gesagt: {offer}.")
    lines += ["", f"Unser Vorschlag: {goal}. Passt Ihnen ein kurzes Gespräch?" if goal
              else "Passt Ihnen nächste Woche ein kurzes Gespräch?"]
    signature = ["", "Viele Grüße"] + ([sender] if sender else []) + ([sender_company] if sender_company else [])
    intro = "\n".join(lines + signature)
    hot = "\n".join([greeting, "", "danke fürs Reinschauen. Ich zeige Ihnen gern, wie das"
                     + (f" bei {company}" if company else "") + " aussehen würde.", "",
                     "Haben Sie diese oder nächste Woche 20 Minuten Zeit?"] + signature)
    bump = "\n".join([greeting, "", "ich hole meine Nachricht noch einmal nach oben.", "",
                      "Sind Sie dafür zuständig, oder gibt es jemand Passenderen?"] + signature)
    breakup = "\n".join([greeting, "", "ich habe nichts gehört und nehme an, dass es gerade nicht passt. "
                         "Ich melde mich nicht noch einmal.",
                         "Falls es später relevant wird, antworten Sie einfach auf diese E-Mail."] + signature)
    return _Copy(subject, intro, hot, bump, breakup)


# --- the plan -------------------------------------------------------------------------------------------


def _reply_transitions() -> list[dict[str, str]]:
    # First match wins: a booked meeting ends the sequence (no follow-up after a "yes" on the calendar),
    # then the classified answers, then every other human reply (never an out-of-office).
    return [
        {"on": "meeting_booked", "to": "stop_meeting_booked"},
        {"on": "reply_positive", "to": "stop_interested"},
        {"on": "reply_negative", "to": "stop_not_interested"},
        {"on": "reply", "to": "stop_replied"},
    ]


def fallback_plan(inputs: PlanInputs) -> dict[str, Any]:
    """The built-in plan for these inputs (a DSL 1.0 document; always passes validate_plan)."""
    seed = inputs.fingerprint()
    copy = _german_copy(inputs, seed) if _is_german(inputs.contact) else _english_copy(inputs, seed)
    re_subject = clean(f"Re: {copy.intro_subject}", limit=200)

    def send(node_id: str, subject: str, text: str, transitions: list[dict[str, str]]) -> dict[str, Any]:
        return {"id": node_id, "type": "send", "channel": "email",
                "message": {"subject": subject, "text": text}, "transitions": transitions}

    return {
        "version": PLAN_VERSION,
        "timezone": plan_timezone(inputs.contact.timezone),
        "quietHours": dict(QUIET_HOURS),
        "sendDays": list(SEND_DAYS),
        "startNodeId": "email_intro",
        "nodes": [
            send("email_intro", copy.intro_subject, copy.intro_text, _reply_transitions() + [
                {"on": "click", "within": "P3D", "to": "email_hot"},
                {"on": "no_reply", "after": "P4D", "to": "email_bump"},
            ]),
            send("email_hot", re_subject, copy.hot_text, _reply_transitions() + [
                {"on": "no_reply", "after": "P4D", "to": "stop_done"},
            ]),
            send("email_bump", re_subject, copy.bump_text, _reply_transitions() + [
                {"on": "click", "within": "P3D", "to": "email_hot"},
                {"on": "no_reply", "after": "P5D", "to": "email_breakup"},
            ]),
            send("email_breakup", re_subject, copy.breakup_text, _reply_transitions() + [
                {"on": "no_reply", "after": "P5D", "to": "stop_done"},
            ]),
            {"id": "stop_meeting_booked", "type": "stop", "reason": "meeting_booked"},
            {"id": "stop_interested", "type": "stop", "reason": "interested"},
            {"id": "stop_not_interested", "type": "stop", "reason": "not_interested"},
            {"id": "stop_replied", "type": "stop", "reason": "replied"},
            {"id": "stop_done", "type": "stop", "reason": "completed"},
        ],
    }
