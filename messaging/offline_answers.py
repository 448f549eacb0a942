"""The reply-classification prompt's offline answer (outreach/ai/offline.py): the rule-based classifier
on the reply the prompt carries. Registered in MessagingConfig.ready(); the demo's OpenAI stub answers
with it."""
from __future__ import annotations

from typing import Any

from messaging.inbound import classify_reply_rules
from outreach.clock import now


def reply_classification_answer(block: str) -> dict[str, Any]:
    """`block`: the reply's body text, between the prompt's REPLY markers."""
    result = classify_reply_rules(subject="", text=block, headers={}, today=now().date())
    return {"label": result.label, "confidence": result.confidence, "stop_request": result.stop_request,
            "return_date": result.return_date.isoformat() if result.return_date else None}
