"""What a reply says, cleaned up: header maps from any shape, the newest part of a reply, auto-reply marks.

Quote stripping lives in messaging.inbound.quotes (libraries plus linear line patterns); `strip_quoted`
and `reply_text_without_quote` are its older names. `is_auto_reply` is the coarse check kept for tools;
the inbound path decides with messaging.inbound.auto_replies (headers and unambiguous wording only).
"""
from __future__ import annotations

import email.parser
import email.policy
import re
import unicodedata
from collections.abc import Iterable, Mapping

from messaging.inbound.quotes import new_text


def normalise_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | str | None) -> dict[str, str]:
    """Lower-cased header names -> value (repeated headers joined with ", ").

    Accepts a mapping, (name, value) pairs, or a raw header block as text (SendGrid Inbound Parse
    posts the headers as one string).
    """
    if not headers:
        return {}
    pairs: Iterable[tuple[str, str]]
    if isinstance(headers, str):
        msg = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(headers.strip() + "\n\n")
        pairs = msg.items()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).strip().lower()
        val = str(value).strip()
        out[key] = f"{out[key]}, {val}" if key in out else val
    return out


def strip_quoted(text: str) -> str:
    """The newest part of a reply: no quoted history, no '>' lines, no '-- ' signature (messaging.inbound.quotes;
    the quadratic pattern this used to be, `_QUOTE_START`, cost 34 s on 8 KB of blank lines)."""
    return new_text(text or "")


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


# --- auto-replies and the text handed to the classifier (inbound processing) ----------------------

# Wording of out-of-office and other automatic answers (subject or the first lines of the body).
AUTO_REPLY_WORDING = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoreply|automatische antwort|abwesenheitsnotiz|"
    r"r[ée]ponse automatique|respuesta autom[aá]tica|risposta automatica|on (annual |parental |sick )?leave until|"
    r"on vacation|on holiday until|away from (the|my) (office|desk)|limited access to (my )?e-?mail",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoreply-From", "X-Mail-Autoreply")
def is_auto_reply(*, headers: dict[str, str], subject: str, text: str) -> bool:
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if any(name.lower() in headers for name in _AUTO_REPLY_HEADERS):
        return True
    if headers.get("precedence", "").strip().lower() == "auto_reply":
        return True
    return bool(AUTO_REPLY_WORDING.search(subject) or AUTO_REPLY_WORDING.search(text[:1500]))


def reply_text_without_quote(text: str) -> str:
    """The new part of a reply, else the whole text (our own pitch would skew the classifier)."""
    return new_text(text or "") or (text or "").strip()
