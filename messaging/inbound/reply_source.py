"""Turning a raw reply (an RFC 822 message, or plain text) into subject, text and headers.

Used by the classify_reply command; inbound processing reads the Inbound Parse form (messaging.inbound.parsing).
"""
from __future__ import annotations

import dataclasses
import email
import email.policy
import html
import re
from email.message import EmailMessage

_HEADER_LINE = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9-]{0,60}:[ \t]")
_KNOWN_HEADERS = ("from", "to", "subject", "date", "message-id", "content-type", "received", "mime-version",
                  "in-reply-to", "references", "return-path", "auto-submitted")


@dataclasses.dataclass(frozen=True)
class ParsedReply:
    subject: str
    text: str
    headers: list[tuple[str, str]]
    is_rfc822: bool


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", markup)
    markup = re.sub(r"(?is)<blockquote\b.*?</blockquote>", "\n", markup)  # quoted history
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    return _html_to_text(content) if part.get_content_type() == "text/html" else content


def parse_reply_source(raw: bytes) -> ParsedReply:
    """A raw message when it starts with headers that mail carries; otherwise the whole input is the text."""
    stripped = raw.lstrip()
    if _HEADER_LINE.match(stripped):
        msg = email.message_from_bytes(stripped, policy=email.policy.default)
        names = {k.lower() for k in msg.keys()}
        if names & set(_KNOWN_HEADERS):
            headers = [(k, str(v)) for k, v in msg.items()]
            return ParsedReply(subject=str(msg.get("subject", "") or ""), text=_body_text(msg), headers=headers,
                               is_rfc822=True)
    return ParsedReply(subject="", text=raw.decode("utf-8", errors="replace"), headers=[], is_rfc822=False)
