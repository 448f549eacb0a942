"""The person's new words in a reply: no quoted history, no copy of our own mail, no signature.

Three cuts, the earliest wins (every leak of our own mail pushes a reply towards "positive"):

- quotequail (made by a sales CRM for this): Gmail/Apple/Outlook headers; it scans the first 1,000 lines and
  is linear;
- mail-parser-reply: non-English Outlook blocks ("Von:/Gesendet:", "De:/Envoyé:"...). It is quadratic on
  runs of blank lines, so it only sees the first 16 KB with blank runs collapsed;
- our own line patterns for what both miss (Dutch, Nordic, Finnish, Polish, Portuguese, Android, '>' lines).

Every pattern here runs on one line at a time and has no nested quantifier: linear on hostile bodies.
"""
from __future__ import annotations

import re

import quotequail
from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES

MAX_TEXT_CHARS = 64 * 1024  # bodies are capped before classification
_MPR_MAX_CHARS = 16 * 1024
_MPR_LANGUAGES = [code for code in ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da") if code in MAIL_LANGUAGES]

# One line that starts the quoted earlier message. Matched against single lines only.
_QUOTE_HEADER_LINE = re.compile(
    r"^\s*(?:"
    r"on\b.{0,300}\bwrote:?\s*$|.{0,300}\bwrote:\s*$"
    r"|am\b.{0,300}\bschrieb\b.{0,150}$"
    r"|le\b.{0,300}\ba [ée]crit\s*:?\s*$"
    r"|el\b.{0,300}\bescribi[óo]\s*:?\s*$"
    r"|em\b.{0,300}\bescreveu\s*:?\s*$|.{0,300}\bescreveu:\s*$"
    r"|il (?:giorno )?.{0,300}\bha scritto\s*:?\s*$"
    r"|op\b.{0,300}\bschreef\b.{0,150}$|.{0,300}het volgende geschreven\s*:?\s*$"
    r"|den\b.{0,300}\bskrev\b.{0,150}$|.{0,300}\bskrev\s*:\s*$"
    r"|.{0,300}\bkirjoitti\s*:?\s*$"
    r"|w dniu\b.{0,300}\bnapisa[łl]\b.{0,20}$|.{0,300}\bnapisa[łl](?:\(a\)|a)?\s*:\s*$|.{0,300}\bpisze\s*:\s*$"
    r"|-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale"
    r"|oorspronkelijk bericht|mensagem original|originalmeddelande|alkuperäinen viesti|oryginalna wiadomość"
    r"|forwarded message|weitergeleitete nachricht)\s*-{2,}"
    r"|_{8,}\s*$"
    r"|sent from my (?:galaxy|samsung|android|iphone|ipad)\b.*$"
    r")",
    re.IGNORECASE,
)
# An Outlook-style header block: "From:" (any language) followed within two lines by "Sent:"/"Date:"/"To:".
_FROM_LINE = re.compile(r"^\s*\*?(?:from|von|de|da|van|fra|från|lähettäjä|od|från)\s*:\*?\s", re.IGNORECASE)
_BLOCK_LINE = re.compile(
    r"^\s*\*?(?:sent|date|to|subject|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|asunto"
    r"|inviato|data|a|oggetto|verzonden|aan|onderwerp|sendt|skickat|till|ämne|lähetetty|päivämäärä|vastaanottaja"
    r"|aihe|wysłano|do|temat|assunto|emne|til)\s*:",
    re.IGNORECASE,
)
_SIGNATURE_LINE = re.compile(r"^--\s*$")


def _normalise(text: str) -> str:
    return (text or "")[:MAX_TEXT_CHARS].replace("\r\n", "\n").replace("\r", "\n")


def _own_cut(lines: list[str]) -> int:
    """Index of the first line of quoted history by our own patterns (len(lines): none)."""
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(">") or _SIGNATURE_LINE.match(line):
            return index
        if len(line) <= 600 and _QUOTE_HEADER_LINE.match(line):
            return index
        if _FROM_LINE.match(line) and any(_BLOCK_LINE.match(nxt) for nxt in lines[index + 1: index + 3]):
            return index
    return len(lines)


def _quotequail_top(text: str) -> str | None:
    try:
        unwrapped = quotequail.unwrap(text)
    except (ValueError, IndexError, AttributeError):
        unwrapped = None
    if unwrapped and unwrapped.get("text_top") is not None:
        return unwrapped["text_top"]
    try:
        chunks = quotequail.quote(text)
    except (ValueError, IndexError, AttributeError):
        return None
    if len(chunks) > 1 and chunks[0][0]:
        return chunks[0][1]
    return None


def _collapse_blank_runs(text: str) -> str:
    lines: list[str] = []
    for line in text.split("\n"):
        if line.strip() or (lines and lines[-1].strip()):
            lines.append(line)
    return "\n".join(lines)


def _mail_parser_reply_top(text: str) -> str | None:
    sample = _collapse_blank_runs(text[:_MPR_MAX_CHARS])
    try:
        reply = EmailReplyParser(languages=_MPR_LANGUAGES).read(sample)
        return reply.latest_reply
    except (ValueError, IndexError, AttributeError, TypeError):
        return None


def _our_lines(our_outbound_text: str | None) -> set[str]:
    """Distinctive lines of our own outbound mail (short lines like "Best," are not distinctive)."""
    if not our_outbound_text:
        return set()
    return {line.strip().lower() for line in _normalise(our_outbound_text).split("\n") if len(line.strip()) >= 20}


def _without_our_mail(lines: list[str], ours: set[str]) -> list[str]:
    if not ours:
        return lines
    return [line for line in lines if line.strip().lstrip("> ").strip().lower() not in ours]


def new_text(text: str, *, our_outbound_text: str | None = None) -> str:
    """The newest part of a reply (see the module docstring); the capped text itself when nothing is left."""
    body = _normalise(text)
    lines = _without_our_mail(body.split("\n"), _our_lines(our_outbound_text))
    own = "\n".join(lines[: _own_cut(lines)])
    candidates = [own]
    head = "\n".join(lines[:1000])
    for top in (_quotequail_top(head), _mail_parser_reply_top(head)):
        if top is not None and top.strip():
            top_lines = top.replace("\r\n", "\n").split("\n")
            candidates.append("\n".join(top_lines[: _own_cut(top_lines)]))
    kept = [c.strip() for c in candidates if c.strip()]
    return min(kept, key=len) if kept else ""
