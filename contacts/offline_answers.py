"""The lead-analysis prompt's offline answer (outreach/ai/offline.py): the deterministic analysis of the
lead the prompt carries. Registered in ContactsConfig.ready(); the demo's OpenAI stub answers with it."""
from __future__ import annotations

import json
from typing import Any

from contacts.analysis import analysis_fallback


def lead_analysis_answer(block: str) -> dict[str, Any]:
    """`block`: the prompt's LEAD JSON (name, domain, website text or notes, contacts with titles)."""
    lead = json.loads(block)
    return analysis_fallback(
        name=lead.get("name", ""), domain=lead.get("domain", ""), text=lead.get("website_text_or_notes", ""),
        titles=[c.get("title", "") for c in lead.get("contacts", [])], offers=[],
    )
