"""What of an Inbound Parse POST is kept in webhook_deliveries: the whole body up to a cap, else the fields.

A reply is read from its headers, text, html, addresses, envelope, charsets and the SPF/DKIM/spam fields;
its attachments are never read. So a POST over SENDGRID_INBOUND_STORED_MAX_BYTES (attachments, mostly) is
stored rebuilt without its file parts (parsed mode: `attachment1..N`) or, in raw mode, with the MIME
message's attachments emptied; each dropped part is named in the delivery's headers (`dropped`). Should the
fields that are read still exceed the cap (a 30 MB text body), the text fields are cut to share it, with a
note, and never the headers, addresses or envelope.
"""
from __future__ import annotations

import email.policy
import secrets
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser

from messaging.inbound.parsing import form_parts, part_bytes

_CUTTABLE = ("text", "html", "email", "spam_report")
# Kept whole even inside a raw MIME message: a bounce notice is read from them.
_REPORT_TYPES = frozenset({"message/delivery-status", "text/rfc822-headers", "message/rfc822-headers"})


@dataclass
class StoredForm:
    body: bytes
    content_type: str
    dropped: list[str] = field(default_factory=list)


def _mime_without_attachments(raw: bytes, dropped: list[str]) -> bytes:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() in _REPORT_TYPES:
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            size = len(part.get_payload(decode=True) or b"")
            dropped.append(f"email: attachment {part.get_filename() or part.get_content_type()} ({size} bytes)")
            part.set_payload("")
    return message.as_bytes()


def _encode(fields: list[tuple[str, Message | None, bytes]]) -> tuple[bytes, str]:
    boundary = f"outreach-stored-{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    for name, part, payload in fields:
        content_type = part.get("Content-Type") if part is not None else None
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'.encode())
        if content_type:
            chunks.append(f"Content-Type: {content_type}\r\n".encode("latin-1", "replace"))
        chunks.append(b"\r\n" + payload + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _cut_to_fit(fields: list[tuple[str, Message | None, bytes]], limit: int, dropped: list[str]) -> None:
    fixed = sum(len(payload) + 200 for name, _, payload in fields if name not in _CUTTABLE)
    cuttable = [i for i, (name, _, _) in enumerate(fields) if name in _CUTTABLE]
    share = max(0, (limit - fixed) // max(1, len(cuttable)))
    for index in cuttable:
        name, part, payload = fields[index]
        if len(payload) > share:
            dropped.append(f"{name}: cut from {len(payload)} to {share} bytes")
            fields[index] = (name, part, payload[:share])


def inbound_form_for_storage(*, body: bytes, content_type: str, limit: int) -> StoredForm:
    """The POST as it is when within ``limit`` bytes, else rebuilt without what is never read."""
    if len(body) <= limit:
        return StoredForm(body=body, content_type=content_type)
    dropped: list[str] = []
    fields: list[tuple[str, Message | None, bytes]] = []
    for name, parts in form_parts(body=body, content_type=content_type).items():
        for part in parts:
            payload = part_bytes(part)
            if part.get_filename():
                dropped.append(f"{name}: file {part.get_filename()} ({len(payload)} bytes)")
                continue
            if name == "email":
                payload = _mime_without_attachments(payload, dropped)
            fields.append((name, part, payload))
    if sum(len(payload) for _, _, payload in fields) > limit:
        _cut_to_fit(fields, limit, dropped)
    stored, stored_type = _encode(fields)
    return StoredForm(body=stored, content_type=stored_type, dropped=dropped)
