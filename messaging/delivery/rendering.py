"""Rendering one outbox row into a mail: text and HTML parts, the unsubscribe footer, headers, threading.

Pure apart from the thread lookup (`threads_for`): what goes out is decided by the row, its sender and the
earlier mails of its contact campaign. The SendGrid request body is assembled here too (`mail_body`), because
the headers and the footer are part of the rendering; the email transport hands it to the client.
"""
from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3
from django.conf import settings

from messaging import compliance
from messaging.inbound.reply_addresses import tenant_reply_address
from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.selectors import outbound_thread_messages
from outreach.channels import CHANNEL_EMAIL

_URL_RE = re.compile(r"https?://[^\s<>\"']+")
_ALLOWED_TAGS = {"a", "b", "strong", "i", "em", "u", "p", "br", "ul", "ol", "li", "blockquote", "span", "div",
                 "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "td", "th", "hr", "small", "code", "pre"}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


# --- text and HTML -------------------------------------------------------------------------------------

def _linkify_escaped(text: str) -> str:
    """HTML-escape plain text, turning bare http(s) URLs into links (click tracking needs <a>)."""
    out: list[str] = []
    position = 0
    for match in _URL_RE.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        end = match.start() + len(url)
        out.append(html.escape(text[position:match.start()]))
        out.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def text_to_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p.strip()]
    return "".join(f"<p>{_linkify_escaped(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def sanitise_html(fragment: str) -> str:
    return nh3.clean(fragment, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer",
                     clean_content_tags={"script", "style"})


def html_to_text(fragment: str) -> str:
    spaced = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</h\d>", "\n", fragment)
    return html.unescape(nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"})).strip()


def message_render(*, body_text: str, body_html: str, unsubscribe_url: str) -> tuple[str, str]:
    """(text part, HTML part), each ending with the unsubscribe footer."""
    text = body_text.strip() if body_text.strip() else html_to_text(body_html)
    html_body = sanitise_html(body_html) if body_html.strip() else text_to_html(text)
    text_part = f"{text}\n\n--\nIf you would rather not hear from us again, unsubscribe here: {unsubscribe_url}\n"
    # clicktracking="off": SendGrid must not rewrite the unsubscribe link (scanners follow tracked links).
    html_part = (
        '<!doctype html><html><body>'
        f'<div>{html_body}</div>'
        '<p style="margin-top:24px;font-size:12px;color:#888888">If you would rather not hear from us again, '
        f'<a href="{html.escape(unsubscribe_url)}" clicktracking="off">unsubscribe here</a>.</p>'
        '</body></html>'
    )
    return text_part, html_part


# --- identity and threading ----------------------------------------------------------------------------

def new_message_id(*, from_email: str) -> str:
    """Our own RFC 5322 Message-ID, on the sender's domain (aligned with From)."""
    domain = from_email.rsplit("@", 1)[-1].strip().lower() if "@" in from_email else ""
    if not domain:
        domain = urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass
class Thread:
    in_reply_to: str = ""
    references: str = ""
    first_subject: str = ""


def threads_for(messages: list[OutboundMessage]) -> dict[int, list[dict]]:
    """The earlier mails of the batch's contact campaigns, in one query."""
    cc_ids = {m.contact_campaign_id for m in messages if m.contact_campaign_id}
    return outbound_thread_messages(contact_campaign_ids=cc_ids) if cc_ids else {}


def thread_for(message: OutboundMessage, threads: dict[int, list[dict]]) -> Thread:
    earlier = [row for row in threads.get(message.contact_campaign_id or 0, []) if row["id"] < message.id]
    if not earlier:
        return Thread()
    ids = [row["message_id_header"] for row in earlier]
    return Thread(in_reply_to=ids[-1], references=" ".join(ids), first_subject=earlier[0]["subject"])


def subject_for(message: OutboundMessage, thread: Thread) -> str:
    if message.subject.strip():
        return message.subject.strip()
    if thread.first_subject:
        base = re.sub(r"^(re:\s*)+", "", thread.first_subject.strip(), flags=re.IGNORECASE)
        return f"Re: {base}"
    return ""


# --- the SendGrid request body -------------------------------------------------------------------------

def _ascii_category(value: str) -> str:
    return value.encode("ascii", "ignore").decode("ascii")[:255]


def _headers(*, message: OutboundMessage, message_id: str, thread: Thread) -> dict[str, str]:
    headers = {"Message-ID": message_id}
    headers.update(compliance.list_unsubscribe_headers(tenant=message.tenant_id, channel=CHANNEL_EMAIL,
                                                       value=message.to_address))
    if thread.in_reply_to:
        headers["In-Reply-To"] = thread.in_reply_to
        headers["References"] = thread.references
    return headers


def _custom_args(message: OutboundMessage, campaign_id: int | None) -> dict[str, str]:
    """Our ids, echoed back on every webhook event (how the webhook path links an event to its row)."""
    custom_args = {
        "tenant_id": str(message.tenant_id),
        "campaign_id": str(campaign_id) if campaign_id else "",
        "contact_campaign_id": str(message.contact_campaign_id) if message.contact_campaign_id else "",
        "node_id": message.node_id,
        "outbound_message_id": str(message.id),
    }
    return {k: v for k, v in custom_args.items() if v}


_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


def display_name(name: str) -> str:
    """A display name SendGrid takes as it is meant: control characters (CR/LF above all, a header injection)
    become spaces, and a name with `,` or `;` becomes an RFC 5322 quoted-string. SendGrid answers 202 to an
    unquoted "Smith, Jo" and then drops the mail as invalid; quoted, it is one name."""
    cleaned = " ".join(_LINE_BREAKS.sub(" ", name).split())
    if "," in cleaned or ";" in cleaned:
        inner = cleaned[1:-1] if len(cleaned) > 1 and cleaned[0] == cleaned[-1] == '"' else cleaned
        return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return cleaned


def _addresses(message: OutboundMessage, sender: EmailSenderIdentity) -> tuple[dict[str, str], dict[str, str]]:
    """(recipient, sender) blocks, each with a display name when there is one."""
    recipient: dict[str, str] = {"email": message.to_address}
    contact_name = display_name(message.contact.full_name) if message.contact is not None else ""
    if contact_name:
        recipient["name"] = contact_name
    sender_block: dict[str, str] = {"email": sender.from_email}
    from_name = display_name(sender.from_name)
    if from_name:
        sender_block["name"] = from_name
    return recipient, sender_block


def _reply_to(sender: EmailSenderIdentity) -> str:
    """The tenant's issued reply address once INBOUND_REPLY_DOMAIN is set, whatever the sender row says (one
    migrated before the domain was set keeps its old reply-to): replies must reach the tenant that sent."""
    return tenant_reply_address(tenant_id=sender.tenant_id) or sender.reply_to or sender.from_email


def mail_body(*, message: OutboundMessage, sender: EmailSenderIdentity, message_id: str, thread: Thread,
              subject: str) -> dict[str, Any]:
    """The /v3/mail/send body for one message (one recipient)."""
    unsubscribe_url = compliance.unsubscribe_url(tenant=message.tenant_id, channel=CHANNEL_EMAIL,
                                                 value=message.to_address)
    text_part, html_part = message_render(body_text=message.body_text, body_html=message.body_html,
                                          unsubscribe_url=unsubscribe_url)
    headers = _headers(message=message, message_id=message_id, thread=thread)
    cc = message.contact_campaign
    campaign_id = cc.campaign_id if cc is not None else None
    recipient, sender_block = _addresses(message, sender)
    categories = [c for c in (_ascii_category(f"campaign-{campaign_id}") if campaign_id else "",
                              _ascii_category(f"node-{message.node_id}") if message.node_id else "") if c]
    body: dict[str, Any] = {
        "personalizations": [{"to": [recipient], "custom_args": _custom_args(message, campaign_id)}],
        "from": sender_block,
        "reply_to": {"email": _reply_to(sender)},
        "subject": subject,
        "content": [{"type": "text/plain", "value": text_part}, {"type": "text/html", "value": html_part}],
        "headers": headers,
        # We carry our own unsubscribe link and headers; SendGrid's would be a second, different one.
        "tracking_settings": {"subscription_tracking": {"enable": False}},
    }
    if categories:
        body["categories"] = categories
    if sender.ip_pool:
        body["ip_pool_name"] = sender.ip_pool
    return body
