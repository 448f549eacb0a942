"""A responder that makes the stub answer like a (very predictable) model, for the demo.

With `python manage.py ai_stub --port 18700` and OPENAI_BASE_URL=http://127.0.0.1:18700/v1 plus any
OPENAI_API_KEY, the whole AI path runs offline: the real openai client, retries, per-tenant caps and
AICall accounting. The answers come from the deterministic components, read back out of the prompts
(the INPUT / LEAD / REPLY blocks our prompt files put the data in):

- `plan`: the fallback planner's plan for the inputs in the prompt;
- `lead_analysis`: the deterministic analysis of the lead in the prompt;
- `reply_classification`: the rule-based classifier on the reply in the prompt.
"""
from __future__ import annotations

import json
import re
from typing import Any

from simulators.openai_stub.server import StubResponse, chat_json, error

_BLOCK = {
    "plan": re.compile(r"<<<INPUT\n(.*?)\nINPUT>>>", re.S),
    "lead_analysis": re.compile(r"<<<LEAD\n(.*?)\nLEAD>>>", re.S),
    "reply_classification": re.compile(r"<<<REPLY\n(.*?)\nREPLY>>>", re.S),
}


def _user_text(request_json: Any) -> str:
    messages = (request_json or {}).get("messages") or []
    # The first user message holds the data (a repair round appends more after it).
    return next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")


def demo_responder(request_json: Any) -> StubResponse:
    fmt = ((request_json or {}).get("response_format") or {}).get("json_schema") or {}
    name = fmt.get("name", "")
    pattern = _BLOCK.get(name)
    match = pattern.search(_user_text(request_json)) if pattern else None
    if match is None:
        return error(400, f"stub: cannot answer response_format {name!r}", error_type="invalid_request_error")
    block = match.group(1)
    if name == "plan":
        from campaigns.fallback_planner import BriefInput, ContactInput, LeadInput, PlanInputs, fallback_plan

        data = json.loads(block)
        brief = dict(data["brief"])
        brief["allowed_link_domains"] = tuple(brief.get("allowed_link_domains") or ())
        contact = {k: v for k, v in data["contact"].items() if k in ContactInput.__dataclass_fields__}
        if contact.get("language") == "unknown":
            contact["language"] = ""
        lead = dict(data.get("lead") or {})
        lead["pains"], lead["angles"] = tuple(lead.get("pains") or ()), tuple(lead.get("angles") or ())
        inputs = PlanInputs(brief=BriefInput(**brief), contact=ContactInput(**contact), lead=LeadInput(**lead))
        return chat_json(fallback_plan(inputs), prompt_tokens=len(json.dumps(request_json)) // 4,
                         completion_tokens=900)
    if name == "lead_analysis":
        from contacts.analysis import analysis_fallback

        lead = json.loads(block)
        analysis = analysis_fallback(
            name=lead.get("name", ""), domain=lead.get("domain", ""), text=lead.get("website_text_or_notes", ""),
            titles=[c.get("title", "") for c in lead.get("contacts", [])], offers=[],
        )
        return chat_json(analysis, prompt_tokens=len(block) // 4 + 300, completion_tokens=200)
    from outreach.ai.replies import classify_reply_rules
    from outreach.clock import now

    result = classify_reply_rules(subject="", text=block, headers={}, today=now().date())
    return chat_json({"label": result.label, "confidence": result.confidence, "stop_request": result.stop_request,
                      "return_date": result.return_date.isoformat() if result.return_date else None},
                     prompt_tokens=len(block) // 4 + 250, completion_tokens=30)
