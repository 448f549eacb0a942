"""What the reply classifier answers: a label, a confidence, a stop request and an OOO return date."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

LABELS = ("positive", "negative", "neutral", "ooo")


@dataclasses.dataclass(frozen=True)
class ReplyClassification:
    label: str  # one of LABELS
    confidence: float  # 0..1
    stop_request: bool = False
    return_date: dt.date | None = None
    source: str = "rules"  # "rules" or "ai"
    reasons: tuple[str, ...] = ()  # which rules fired (for logs and the admin), not part of the contract
    # "reply" (a person wrote it) or "auto_reply" (label "ooo" for an absence, "" for e.g. a ticket
    # acknowledgement). Bounces never get here: messaging.inbound.bounces tells them first.
    kind: str = "reply"
    language: str = ""  # ISO 639-1 of the new text ("" unknown)
    # Why an operator should look at this reply although it was read (e.g. a weekday that contradicts its date);
    # it still moves the plan. "" when nothing is odd.
    review_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 2),
            "stop_request": self.stop_request,
            "return_date": self.return_date.isoformat() if self.return_date else None,
        }
