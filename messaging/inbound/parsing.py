"""SendGrid Inbound Parse: the stored multipart POST read back into one `ParsedInbound`.

The endpoint stores the raw multipart POST; this module parses it again from those bytes (so a retry of a
failed delivery works from exactly what was received), in either mode:

- parsed mode: fields ``headers`` (raw header block), ``text``, ``html``, ``from``, ``to``,
  ``subject``, ``envelope``, ``charsets`` (JSON: field -> charset) ...;
- raw mode: the whole MIME message in the field ``email``.

Inbound mail has no event id: it is deduplicated on its own ``Message-ID`` (or a hash of its content).
"""
from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser

import orjson

from messaging.webhooks.nesting import json_loads_bounded, nesting_too_deep

MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")

FormParts = dict[str, list[Message]]


@dataclass
class ParsedInbound:
    message_id: str
    in_reply_to: str
    references: str
    from_email: str
    to: list[str]
    subject: str
    text: str
    html: str
    headers_text: str
    headers: dict[str, str] = field(default_factory=dict)
    cc: list[str] = field(default_factory=list)
    message: Message | None = None  # raw mode: the MIME message (a DSN's parts are read from it)
    spf: str = ""  # Inbound Parse's `SPF` field ("pass", "fail", "softfail", "none", ...)
    dkim: str = ""  # Inbound Parse's `dkim` field ("{@example.com : pass}", "none", ...)
    spam_score: float | None = None  # Inbound Parse's `spam_score` (SpamAssassin), when spam checking is on
    spam_report: str = ""


@dataclass
class _MailContent:
    """What either mode yields before the addresses are read: headers, bodies, subject, a content hash."""

    headers: dict[str, str]
    headers_block: str
    text: str
    html: str
    subject: str
    content_hash: str
    message: Message | None = None


# --------------------------------------------------------------------------------------------
# Multipart form parsing (stdlib email package, from the stored bytes)
# --------------------------------------------------------------------------------------------

def form_parts(*, body: bytes, content_type: str) -> FormParts:
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type.lower():
        raise ValueError("expected multipart/form-data with a boundary")
    wrapper = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    message = BytesParser(policy=email.policy.HTTP).parsebytes(wrapper)
    if not message.is_multipart():
        raise ValueError("the form has no parts")
    parts: FormParts = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts.setdefault(str(name), []).append(part)
    return parts


def part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if payload is None:  # e.g. an attached message/rfc822 parsed as a nested message
        return part.as_bytes()
    return payload


def _field_text(parts: FormParts, name: str, charsets: dict[str, str]) -> str:
    found = parts.get(name)
    if not found:
        return ""
    raw = part_bytes(found[0])
    charset = charsets.get(name) or found[0].get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def inbound_form_problem(*, body: bytes, content_type: str) -> str | None:
    """Why a POST is not an Inbound Parse form (checked before anything is stored), or None."""
    try:
        parts = form_parts(body=body, content_type=content_type)
    except (ValueError, UnicodeError) as exc:
        return f"not an Inbound Parse form: {exc}"
    if "email" not in parts and "headers" not in parts and "from" not in parts:
        return "neither 'email' (raw mode) nor 'headers'/'from' (parsed mode) present"
    for name in ("envelope", "charsets"):
        if _json_field_too_deep(parts, name):
            return f"'{name}' is JSON nested too deeply"
    return None


def _json_field_too_deep(parts: FormParts, name: str) -> bool:
    """A JSON field nested beyond any real one (a malformed one is read as absent later, as before)."""
    text = _field_text(parts, name, {})
    if not text:
        return False
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return "depth" in str(exc)
    return nesting_too_deep(value)


def _header_map(message: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in message.items():
        # First occurrence wins (Received etc. repeat; the ones we read do not).
        headers.setdefault(key.lower(), str(value))
    return headers


def _body_of(message: EmailMessage, subtype: str) -> str:
    try:
        part = message.get_body(preferencelist=(subtype,))
        if part is None:
            return ""
        content = part.get_content()
        return content if isinstance(content, str) else content.decode("utf-8", "replace")
    except (KeyError, LookupError, ValueError, AttributeError):
        return ""


def _charsets(parts: FormParts) -> dict[str, str]:
    """The form's `charsets` field (JSON: field -> charset); {} when absent or malformed."""
    raw_charsets = _field_text(parts, "charsets", {})
    if not raw_charsets:
        return {}
    try:
        loaded = json_loads_bounded(raw_charsets)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


# --------------------------------------------------------------------------------------------
# The two modes
# --------------------------------------------------------------------------------------------

def raw_mail_content(raw_mail: bytes) -> _MailContent:
    """A whole RFC 822 message (raw mode; also the corpus' raw cases) read with the email package."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw_mail)
    headers = _header_map(message)
    headers_text = raw_mail.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw_mail else raw_mail.split(b"\n\n", 1)[0]
    return _MailContent(
        headers=headers,
        headers_block=headers_text.decode("utf-8", "replace"),
        text=_body_of(message, "plain"),
        html=_body_of(message, "html"),
        subject=headers.get("subject", ""),
        content_hash=hashlib.sha256(raw_mail).hexdigest(),
        message=message,
    )


def _raw_mode_content(parts: FormParts, charsets: dict[str, str]) -> _MailContent:
    """Raw mode: the whole MIME message in the field `email`."""
    content = raw_mail_content(part_bytes(parts["email"][0]))
    if not content.subject:
        content.subject = _field_text(parts, "subject", charsets)
    return content


def _parsed_mode_content(parts: FormParts, charsets: dict[str, str]) -> _MailContent:
    """Parsed mode: SendGrid split the mail into fields (`headers`, `text`, `html`, `subject`, ...)."""
    headers_block = _field_text(parts, "headers", charsets)
    headers = _header_map(HeaderParser(policy=email.policy.default).parsestr(headers_block))
    text = _field_text(parts, "text", charsets)
    html = _field_text(parts, "html", charsets)
    subject = _field_text(parts, "subject", charsets) or headers.get("subject", "")
    content_hash = hashlib.sha256(
        "\x00".join([headers_block, text, html, subject]).encode("utf-8", "replace")
    ).hexdigest()
    return _MailContent(headers=headers, headers_block=headers_block, text=text, html=html, subject=subject,
                        content_hash=content_hash)


# --------------------------------------------------------------------------------------------
# Addresses and the Message-ID
# --------------------------------------------------------------------------------------------

def _addresses(values: list[str]) -> list[str]:
    return sorted({addr.lower() for _, addr in email.utils.getaddresses([v for v in values if v]) if addr})


def _envelope(parts: FormParts, charsets: dict[str, str]) -> tuple[list[str], str]:
    """(recipients, sender) from the form's `envelope` JSON; empty when absent or malformed."""
    envelope = _field_text(parts, "envelope", charsets)
    if not envelope:
        return [], ""
    try:
        env = json_loads_bounded(envelope)
    except ValueError:
        return [], ""
    if not isinstance(env, dict):
        return [], ""
    recipients = [str(v) for v in (env.get("to") or []) if v]
    sender = str(env["from"]).strip().lower() if env.get("from") else ""
    return recipients, sender


def _message_id(headers: dict[str, str], content_hash: str) -> str:
    """The mail's own Message-ID, else (missing or over-long) a hash of its content."""
    tokens = MESSAGE_ID_RE.findall(headers.get("message-id", ""))
    message_id = tokens[0] if tokens else ""
    if not message_id or len(message_id) > 255:
        message_id = f"sha256:{content_hash}"
    return message_id


def _spam_score(parts: FormParts, charsets: dict[str, str]) -> float | None:
    raw = _field_text(parts, "spam_score", charsets).strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def inbound_parse(*, body: bytes, content_type: str) -> ParsedInbound:
    parts = form_parts(body=body, content_type=content_type)
    charsets = _charsets(parts)
    content = _raw_mode_content(parts, charsets) if "email" in parts else _parsed_mode_content(parts, charsets)
    headers = content.headers
    from_header = headers.get("from", "") or _field_text(parts, "from", charsets)
    from_email = email.utils.parseaddr(from_header)[1].strip().lower()
    envelope_to, envelope_from = _envelope(parts, charsets)
    if not from_email:
        from_email = envelope_from
    to = _addresses([headers.get("to", ""), _field_text(parts, "to", charsets), *envelope_to])
    cc = _addresses([headers.get("cc", ""), _field_text(parts, "cc", charsets)])
    return ParsedInbound(
        message_id=_message_id(headers, content.content_hash),
        in_reply_to=headers.get("in-reply-to", "").strip()[:255],
        references=headers.get("references", "").strip(),
        from_email=from_email[:254],
        to=to,
        subject=content.subject.strip()[:998],
        text=content.text,
        html=content.html,
        headers_text=content.headers_block,
        headers=headers,
        cc=cc,
        message=content.message,
        spf=_field_text(parts, "SPF", charsets).strip()[:100],
        dkim=_field_text(parts, "dkim", charsets).strip()[:500],
        spam_score=_spam_score(parts, charsets),
        spam_report=_field_text(parts, "spam_report", charsets)[:4000],
    )
