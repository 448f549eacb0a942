"""What a reply says, cleaned up: header maps from any shape, the newest part of a reply, auto-reply marks.

Two quote strippers live here on purpose (their outputs differ and both are pinned by tests):
`reply_text_without_quote` cuts what inbound processing hands the classifier, `strip_quoted` is the
classifier's own, stricter cut (quote intros in four languages, Outlook separators, signatures).
"""
from __future__ import annotations

import email.parser
import email.policy
import re
import unicodedata
from collections.abc import Iterable, Mapping


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


# Where the quoted earlier message starts: everything from here down is not the person's words.
_QUOTE_START = re.compile(
    r"^\s*(?:"
    r"on\b.{0,300}?\bwrote:"  # Gmail/Apple: "On Tue, 3 Dec 2026 at 10:00, Dana <...> wrote:"
    r"|am\b.{0,300}?\bschrieb\b.{0,100}?:"
    r"|le\b.{0,300}?\ba écrit\s*:"
    r"|el\b.{0,300}?\bescribió\s*:"
    r"|-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{2,}"
    r"|_{8,}"  # Outlook's separator line
    r"|(?:from|von|de)\s*:\s.{0,200}\n\s*(?:sent|gesendet|envoyé|enviado|date|datum|to|an|à|para)\s*:"
    r")",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SIGNATURE = re.compile(r"^--\s*$", re.MULTILINE)


def strip_quoted(text: str) -> str:
    """The newest part of a reply: no quoted history, no '>' lines, no '-- ' signature."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    match = _QUOTE_START.search(text)
    if match and match.start() > 0:
        text = text[: match.start()]
    sig = _SIGNATURE.search(text)
    if sig and sig.start() > 0:
        text = text[: sig.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


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
_QUOTE_INTRO = re.compile(r"^\s*(On .{0,200}wrote:|Am .{0,200}schrieb .{0,100}:|Le .{0,200}a écrit ?:|"
                          r"-{2,}\s*Original Message\s*-{2,}|From: .+)\s*$", re.IGNORECASE)


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
    """The new part of a reply: stop at the quoted original (our own pitch would skew the classifier)."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith(">") or _QUOTE_INTRO.match(line):
            break
        kept.append(line)
    return "\n".join(kept).strip() or text.strip()
