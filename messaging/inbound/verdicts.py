"""Authenticated or held: SPF/DKIM results and the spam verdict that Inbound Parse posts with the mail.

A reply whose SPF and DKIM both fail, or that SpamAssassin scores as spam, does not move a plan: anyone can
forge a From address, and a forged "positive" would push another person's enrolment. It is stored with
its verdict for an operator to release or discard. A stop request in it is still honoured, but only for
the address it came from (erring toward not mailing is the compliant side; the forger cannot opt out
anyone else).
"""
from __future__ import annotations

import re

from messaging.inbound.parsing import ParsedInbound

# SpamAssassin's own default threshold (required_score 5.0); Inbound Parse posts the score it computed.
SPAM_SCORE_HOLD = 5.0
_DKIM_PASS = re.compile(r":\s*pass\b", re.IGNORECASE)
_SPF_PASS = ("pass",)
_NO_RESULT = ("", )


def _spf_failed(spf: str) -> bool:
    value = (spf or "").strip().lower()
    return value not in _SPF_PASS and value not in _NO_RESULT


def _dkim_failed(dkim: str) -> bool:
    value = (dkim or "").strip()
    return bool(value) and not _DKIM_PASS.search(value)


def inbound_verdict(*, parsed: ParsedInbound) -> str:
    """"spam", "unauthenticated" (SPF and DKIM both reported and neither passed) or "pass".

    A mail with no results at all (raw mode without the fields, or a test) is "pass": we only hold what
    Inbound Parse told us is not authentic."""
    if parsed.spam_score is not None and parsed.spam_score >= SPAM_SCORE_HOLD:
        return "spam"
    if _spf_failed(parsed.spf) and _dkim_failed(parsed.dkim):
        return "unauthenticated"
    return "pass"
