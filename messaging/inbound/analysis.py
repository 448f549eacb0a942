"""One inbound mail, read: a bounce, an automatic reply or a person's reply; the new text; stop; date.

The single entry point of the inbound path and of `manage.py evaluate_replies` (so the corpus measures
exactly what production does). Order:

1. bounces first (a DSN or a dead-mailbox notice is never a reply: messaging.inbound.bounces);
2. the body: text, else the HTML converted to text; capped at 64 KB; our own outbound text removed;
   the quote stripped (messaging.inbound.quotes);
3. classify (messaging.inbound.classification: stop first, then auto-reply, then the label).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from email.message import Message
from typing import Any

from messaging.inbound.bounces import Bounce, bounce_detect
from messaging.inbound.classification import classify_reply
from messaging.inbound.html_text import html_to_text
from messaging.inbound.labels import ReplyClassification
from messaging.inbound.quotes import MAX_TEXT_CHARS, new_text


@dataclasses.dataclass(frozen=True)
class MailToRead:
    subject: str
    text: str
    html: str
    headers: dict[str, str]  # lower-cased names
    from_email: str
    message: Message | None = None  # the MIME message, when the mail came raw (DSNs need its parts)
    our_outbound_text: str = ""


@dataclasses.dataclass(frozen=True)
class InboundReading:
    kind: str  # "reply", "auto_reply", "bounce"
    new_text: str
    classification: ReplyClassification | None  # None for a bounce
    bounce: Bounce | None = None

    @property
    def label(self) -> str:
        return self.classification.label if self.classification is not None else ""

    @property
    def stop_request(self) -> bool:
        return bool(self.classification and self.classification.stop_request)


def body_text(mail: MailToRead) -> tuple[str, str]:
    """(plain text, HTML as text), each capped at 64 KB."""
    return (mail.text or "")[:MAX_TEXT_CHARS], html_to_text(mail.html or "")[:MAX_TEXT_CHARS]


def inbound_read(*, mail: MailToRead, tenant: Any, received_at: dt.datetime | None) -> InboundReading:
    text, html_text = body_text(mail)
    bounce = bounce_detect(message=mail.message, from_email=mail.from_email, subject=mail.subject,
                           text=text or html_text)
    if bounce is not None:
        return InboundReading(kind="bounce", new_text=(text or html_text)[:2000], classification=None, bounce=bounce)
    newest = new_text(text, our_outbound_text=mail.our_outbound_text) or new_text(
        html_text, our_outbound_text=mail.our_outbound_text)
    classification = classify_reply(tenant=tenant, subject=mail.subject, text=newest, headers=mail.headers,
                                    received_at=received_at, html_text=html_text,
                                    sender=mail.from_email)
    return InboundReading(kind=classification.kind, new_text=newest, classification=classification)
