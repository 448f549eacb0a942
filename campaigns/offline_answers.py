"""The plan prompt's offline answer (outreach/ai/offline.py): the fallback planner's plan for the inputs
the prompt carries. Registered in CampaignsConfig.ready(); the demo's OpenAI stub answers with it."""
from __future__ import annotations

import json
from typing import Any

from campaigns.fallback_planner import BriefInput, ContactInput, LeadInput, PlanInputs, fallback_plan


def plan_answer(block: str) -> dict[str, Any]:
    """`block`: the prompt's INPUT JSON (PlanInputs.as_dict(), read back into the planner's inputs)."""
    data = json.loads(block)
    brief = dict(data["brief"])
    brief["allowed_link_domains"] = tuple(brief.get("allowed_link_domains") or ())
    contact = {k: v for k, v in data["contact"].items() if k in ContactInput.__dataclass_fields__}
    if contact.get("language") == "unknown":
        contact["language"] = ""
    lead = dict(data.get("lead") or {})
    lead["pains"], lead["angles"] = tuple(lead.get("pains") or ()), tuple(lead.get("angles") or ())
    inputs = PlanInputs(brief=BriefInput(**brief), contact=ContactInput(**contact), lead=LeadInput(**lead))
    return fallback_plan(inputs)
