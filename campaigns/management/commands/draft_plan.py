"""`python manage.py draft_plan --brief BRIEF.json --contact CONTACT.json [--lead LEAD.json]`

Prints the validated plan this contact would get (the AI's when OPENAI_API_KEY is set, else the
built-in planner's) as JSON on stdout, and one line "source: ..." on stderr. Nothing is stored.
Malformed input exits with status 1 and one line naming the file and field at fault. The JSON fields
are documented in docs/ai.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from campaigns.dsl import validate_plan
from campaigns.generation import BriefInput, ContactInput, LeadInput, PlanInputs, plan_draft
from contacts.interface import analysis_fallback
from outreach.timezones import is_iana_timezone

BRIEF_FIELDS = {"goal": str, "offer": str, "ai_instructions": str, "allowed_link_domains": list, "name": str,
                "sender_name": str, "sender_company": str}
BRIEF_REQUIRED = ("goal", "offer")
CONTACT_FIELDS = {"first_name": str, "last_name": str, "title": str, "email": str, "timezone": str, "language": str}
CONTACT_REQUIRED = ("first_name",)
LEAD_FIELDS = {"name": str, "domain": str, "website_text": str, "notes": str, "summary": str, "pains": list,
               "angles": list, "fit_score": int}
LEAD_REQUIRED = ("name",)


def _load(label: str, path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    if not path.is_file():
        raise CommandError(f"{label} {path_text}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(f"{label} {path_text}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"{label} {path_text}: bad JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{label} {path_text}: expected a JSON object, got {type(data).__name__}")
    return data


_JSON_TYPE = {str: "a string", list: "a list", int: "an integer"}


def _check(label: str, data: dict[str, Any], fields: dict[str, type], required: tuple[str, ...]) -> None:
    for name in required:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise CommandError(f"{label}: missing required field {name!r}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CommandError(f"{label}: unknown field {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    for name, kind in fields.items():
        value = data.get(name)
        if value is None:
            continue
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise CommandError(f"{label}: field {name!r} must be {_JSON_TYPE[kind]}, got {json.dumps(value)[:40]}")
        if kind is list and not all(isinstance(item, str) for item in value):
            raise CommandError(f"{label}: field {name!r} must be a list of strings")


def inputs_from_json(brief: dict[str, Any], contact: dict[str, Any], lead: dict[str, Any] | None) -> PlanInputs:
    """Validate the three JSON objects and build the planner's inputs; CommandError names the field at fault."""
    _check("brief", brief, BRIEF_FIELDS, BRIEF_REQUIRED)
    _check("contact", contact, CONTACT_FIELDS, CONTACT_REQUIRED)
    zone = (contact.get("timezone") or "").strip()
    if zone and not is_iana_timezone(zone):
        raise CommandError(f"contact: field 'timezone' is not an IANA time zone: {zone!r}")
    lead_input = LeadInput()
    if lead is not None:
        _check("lead", lead, LEAD_FIELDS, LEAD_REQUIRED)
        score = lead.get("fit_score")
        if score is not None and not 0 <= score <= 100:
            raise CommandError("lead: field 'fit_score' must be between 0 and 100")
        analysis: dict[str, Any] = {}
        if not lead.get("summary"):
            # No analysis given: derive the deterministic one from the lead's own text, as the pipeline would.
            text = "\n\n".join(p for p in (lead.get("website_text"), lead.get("notes")) if p)
            analysis = analysis_fallback(name=lead["name"], domain=lead.get("domain", ""), text=text,
                                         titles=[contact.get("title", "")], offers=[brief["offer"]])
        lead_input = LeadInput(
            name=lead["name"],
            domain=lead.get("domain", ""),
            summary=lead.get("summary") or analysis.get("summary", ""),
            pains=tuple(lead.get("pains") or analysis.get("pains", ())),
            angles=tuple(lead.get("angles") or analysis.get("angles", ())),
            fit_score=score if score is not None else analysis.get("fit_score"),
        )
    return PlanInputs(
        brief=BriefInput(
            goal=brief["goal"], offer=brief["offer"], ai_instructions=brief.get("ai_instructions", ""),
            allowed_link_domains=tuple(brief.get("allowed_link_domains") or ()), campaign_name=brief.get("name", ""),
            sender_name=brief.get("sender_name", ""), sender_company=brief.get("sender_company", ""),
        ),
        contact=ContactInput(**{name: contact.get(name) or "" for name in CONTACT_FIELDS}),
        lead=lead_input,
    )


class Command(BaseCommand):
    help = "Print the validated plan a contact would get for a campaign brief (AI with a key, else built-in)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brief", required=True, help="campaign brief JSON (goal, offer, ...)")
        parser.add_argument("--contact", required=True, help="contact JSON (first_name, title, timezone, ...)")
        parser.add_argument("--lead", help="lead JSON (name, domain, website_text, ... or its analysis)")

    def handle(self, *args, **options) -> None:
        brief = _load("brief", options["brief"])
        contact = _load("contact", options["contact"])
        lead = _load("lead", options["lead"]) if options.get("lead") else None
        inputs = inputs_from_json(brief, contact, lead)
        draft = plan_draft(inputs=inputs, tenant=None)
        problems = validate_plan(draft.plan)
        if problems:  # cannot happen (plan_draft only returns valid plans); say so loudly if it does
            raise CommandError(f"internal error: drafted plan is invalid: {problems[0]}")
        detail = f" ({draft.source_detail})" if draft.source_detail else ""
        self.stderr.write(f"source: {draft.source}{detail}")
        self.stdout.write(json.dumps(draft.plan, ensure_ascii=False, indent=2))
