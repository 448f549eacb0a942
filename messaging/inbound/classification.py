"""Reply classification: positive / negative / neutral / ooo, a stop request, and an OOO return date.

`classify_reply` is the one entry point (inbound reply handling calls it). With an OpenAI key it asks
the model (JSON-schema output); without one, or when the model call fails, a rule-based classifier
answers, so inbound processing never depends on the AI being up. Some signals are decided by rules
even when a key is set, because they are certain and free:

- auto-replies (RFC 3834 `Auto-Submitted`, `X-Autoreply`, Exchange/Apple headers, fixed wording) skip the model;
- an explicit opt-out phrase ("unsubscribe", "remove me", "nicht mehr kontaktieren") is a stop request
  whatever the model says: honouring a stop we should not have is cheap, missing one is a compliance
  failure.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from messaging.inbound.labels import LABELS, ReplyClassification
from messaging.inbound.reply_rules import classify_reply_rules
from messaging.inbound.reply_text import normalise_headers, strip_quoted
from messaging.inbound.return_dates import extract_return_date, plausible_return_date
from outreach import clock
from outreach.ai import client as ai_client
from outreach.ai.prompting import PromptBook

PROMPTS = PromptBook.beside(__file__)

logger = logging.getLogger(__name__)

# --- entry point --------------------------------------------------------------------------------------


def classify_reply(
    *,
    tenant: Any,
    subject: str,
    text: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | str | None,
    received_at: dt.datetime | None = None,
    html_text: str = "",
    sender: str = "",
) -> ReplyClassification:
    """Classify one inbound reply. `tenant` may be None (operator tools); it is used for AI accounting.

    `received_at` (optional) anchors relative dates ("back on Monday", "12 December" without a year);
    without it the `Date` header is used, then the clock.
    """
    norm_headers = normalise_headers(headers)
    reference = _reference_date(norm_headers, received_at)
    rules = classify_reply_rules(subject=subject or "", text=text or "", headers=norm_headers, today=reference,
                                 html_text=html_text, sender=(sender or "").lower())

    if not ai_client.ai_enabled() or rules.kind == "auto_reply":
        # An auto-reply is told by headers and fixed wording: certain, and free.
        return rules
    try:
        ai = _classify_reply_ai(tenant=tenant, subject=subject or "", text=text or "", today=reference)
    except ai_client.AIError as exc:
        logger.warning("AI reply classification failed, using rules: %s", exc)
        return rules
    ai = dataclasses.replace(ai, language=rules.language)
    if rules.stop_request and not ai.stop_request:
        # Stop wins: the rules' stop request is kept whatever the model says.
        ai = dataclasses.replace(ai, stop_request=True, reasons=ai.reasons + ("rules_stop_request",))
    if ai.stop_request and ai.label not in ("negative",):
        # A person asking to stop is declining, whatever else the message says.
        ai = dataclasses.replace(ai, label="negative")
    return ai

# --- AI classifier ------------------------------------------------------------------------------------

REPLY_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["label", "confidence", "stop_request", "return_date"],
    "properties": {
        "label": {"type": "string", "enum": list(LABELS)},
        "confidence": {"type": "number"},
        "stop_request": {"type": "boolean"},
        "return_date": {"type": ["string", "null"], "description": "YYYY-MM-DD or null"},
    },
}

_MAX_AI_TEXT = 6000  # characters of the body sent to the model; replies that matter are short


def _classify_reply_ai(*, tenant: Any, subject: str, text: str, today: dt.date) -> ReplyClassification:
    body = strip_quoted(text)[:_MAX_AI_TEXT]
    result = ai_client.complete_json(
        tenant=tenant,
        purpose="reply_classification",
        messages=[
            {"role": "system", "content": PROMPTS.load("reply_classification_system")},
            {"role": "user", "content": PROMPTS.render(
                "reply_classification_user", received_on=today.isoformat(), subject=subject[:300], text=body)},
        ],
        schema=REPLY_JSON_SCHEMA,
        schema_name="reply_classification",
    )
    data = result.data
    if not isinstance(data, dict):
        raise ai_client.AIError(result.parse_error or "model answer is not a JSON object", kind="bad_output")
    label = data.get("label")
    if label not in LABELS:
        raise ai_client.AIError(f"model returned an unknown label {label!r}", kind="bad_output")
    try:
        confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
    except (TypeError, ValueError) as exc:
        raise ai_client.AIError("model returned a non-numeric confidence", kind="bad_output") from exc
    return_date = None
    raw_date = data.get("return_date")
    if label == "ooo" and isinstance(raw_date, str) and raw_date:
        try:
            return_date = plausible_return_date(dt.date.fromisoformat(raw_date[:10]), today=today)
        except ValueError:
            return_date = None
    if label == "ooo" and return_date is None:
        # The model missed, mangled or misread the date: the rules' extraction is deterministic, use it.
        return_date = extract_return_date(text, today=today)
    if label != "ooo":
        return_date = None
    return ReplyClassification(
        label=label,
        confidence=confidence,
        stop_request=bool(data.get("stop_request")),
        return_date=return_date,
        source="ai",
        kind="auto_reply" if label == "ooo" else "reply",
    )


def _reference_date(headers: dict[str, str], received_at: dt.datetime | None) -> dt.date:
    if received_at is not None:
        return received_at.date()
    raw = headers.get("date")
    if raw:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
            if parsed is not None:
                return parsed.date()
        except (TypeError, ValueError, IndexError):
            pass
    return clock.now().date()


