"""Inbound mail: replies to our mail (and mail to our List-Unsubscribe mailto), through SendGrid Inbound Parse.

Modules, one idea each:

- `parsing`: the stored Inbound Parse POST (parsed or raw mode) -> `ParsedInbound`;
- `matching`: which tenant and which outbound message a reply answers;
- `reply_text`, `reply_rules`, `return_dates`, `labels`, `classification`: reply classification
  (`classify_reply`: the rule classifier, and the AI path through outreach.ai.client);
- `stop_requests`: a stop request is never lost, even when the tenant is ambiguous;
- `processing`: `inbound_delivery_process`, the engine feed;
- `reply_source`: a raw RFC 822 message or plain text for the `classify_reply` command.
"""
from __future__ import annotations

from messaging.inbound.classification import classify_reply
from messaging.inbound.labels import LABELS, ReplyClassification
from messaging.inbound.matching import (
    InboundMatch,
    inbound_match,
    inbound_match_outbound,
    inbound_recipient_tenant_ids,
)
from messaging.inbound.parsing import ParsedInbound, inbound_form_problem, inbound_parse
from messaging.inbound.processing import inbound_delivery_process
from messaging.inbound.reply_rules import classify_reply_rules
from messaging.inbound.reply_text import (
    AUTO_REPLY_WORDING,
    is_auto_reply,
    normalise_headers,
    reply_text_without_quote,
    strip_quoted,
)
from messaging.inbound.return_dates import (
    MAX_RETURN_DAYS_AHEAD,
    ReturnDate,
    extract_return_date,
    plausible_return_date,
    read_return_date,
)

__all__ = [
    "AUTO_REPLY_WORDING",
    "LABELS",
    "MAX_RETURN_DAYS_AHEAD",
    "InboundMatch",
    "ParsedInbound",
    "ReplyClassification",
    "classify_reply",
    "classify_reply_rules",
    "extract_return_date",
    "inbound_delivery_process",
    "inbound_form_problem",
    "inbound_match",
    "inbound_match_outbound",
    "inbound_parse",
    "inbound_recipient_tenant_ids",
    "is_auto_reply",
    "normalise_headers",
    "plausible_return_date",
    "read_return_date",
    "ReturnDate",
    "reply_text_without_quote",
    "strip_quoted",
]
