"""SendGrid Inbound Parse: replies to our mail (and mail to our List-Unsubscribe mailto).

The endpoint stores the raw multipart POST; this module parses it again from those bytes
(so a retry of a failed delivery works from exactly what was received), in either mode:

- parsed mode: fields ``headers`` (raw header block), ``text``, ``html``, ``from``, ``to``,
  ``subject``, ``envelope``, ``charsets`` (JSON: field -> charset) ...;
- raw mode: the whole MIME message in the field ``email``.

A reply is matched to what it answers through ``In-Reply-To`` / ``References`` (which hold
the ``Message-ID`` we set on every outbound mail). Failing that, the tenant is told from the
reply's recipients (a sender identity's reply-to or from address, or our List-Unsubscribe
mailto), and the reply goes to that tenant's latest mail to the replying address. When no tenant,
or more than one, can be told, the reply is stored without a tenant for an operator and the
engine hears nothing; a stop request is still honoured (see ``_stop_request_opt_outs``).
Inbound mail has no event id: it is deduplicated on its own ``Message-ID`` (or a hash of its
content).
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from messaging.models import EmailSenderIdentity, InboundMessage, OutboundMessage, WebhookDelivery
from outreach import clock

logger = logging.getLogger(__name__)

_MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
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


# --------------------------------------------------------------------------------------------
# Multipart form parsing (stdlib email package, from the stored bytes)
# --------------------------------------------------------------------------------------------

def _form_parts(*, body: bytes, content_type: str) -> dict[str, list[Message]]:
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type.lower():
        raise ValueError("expected multipart/form-data with a boundary")
    wrapper = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    message = BytesParser(policy=email.policy.HTTP).parsebytes(wrapper)
    if not message.is_multipart():
        raise ValueError("the form has no parts")
    parts: dict[str, list[Message]] = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts.setdefault(str(name), []).append(part)
    return parts


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if payload is None:  # e.g. an attached message/rfc822 parsed as a nested message
        return part.as_bytes()
    return payload


def _field_text(parts: dict[str, list[Message]], name: str, charsets: dict[str, str]) -> str:
    found = parts.get(name)
    if not found:
        return ""
    raw = _part_bytes(found[0])
    charset = charsets.get(name) or found[0].get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def inbound_form_problem(*, body: bytes, content_type: str) -> str | None:
    """Why a POST is not an Inbound Parse form (checked before anything is stored), or None."""
    try:
        parts = _form_parts(body=body, content_type=content_type)
    except (ValueError, UnicodeError) as exc:
        return f"not an Inbound Parse form: {exc}"
    if "email" not in parts and "headers" not in parts and "from" not in parts:
        return "neither 'email' (raw mode) nor 'headers'/'from' (parsed mode) present"
    return None


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


def inbound_parse(*, body: bytes, content_type: str) -> ParsedInbound:
    parts = _form_parts(body=body, content_type=content_type)
    charsets: dict[str, str] = {}
    raw_charsets = _field_text(parts, "charsets", {})
    if raw_charsets:
        try:
            loaded = json.loads(raw_charsets)
            charsets = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except ValueError:
            charsets = {}
    if "email" in parts:
        raw_mail = _part_bytes(parts["email"][0])
        message = BytesParser(policy=email.policy.default).parsebytes(raw_mail)
        headers = _header_map(message)
        headers_text = raw_mail.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw_mail else raw_mail.split(b"\n\n", 1)[0]
        text = _body_of(message, "plain")
        html = _body_of(message, "html")
        subject = headers.get("subject", "") or _field_text(parts, "subject", charsets)
        content_hash = hashlib.sha256(raw_mail).hexdigest()
        headers_block = headers_text.decode("utf-8", "replace")
    else:
        headers_block = _field_text(parts, "headers", charsets)
        header_message = HeaderParser(policy=email.policy.default).parsestr(headers_block)
        headers = _header_map(header_message)
        text = _field_text(parts, "text", charsets)
        html = _field_text(parts, "html", charsets)
        subject = _field_text(parts, "subject", charsets) or headers.get("subject", "")
        content_hash = hashlib.sha256(
            "\x00".join([headers_block, text, html, subject]).encode("utf-8", "replace")
        ).hexdigest()
    from_header = headers.get("from", "") or _field_text(parts, "from", charsets)
    from_email = email.utils.parseaddr(from_header)[1].strip().lower()
    to_values = [headers.get("to", ""), _field_text(parts, "to", charsets)]
    envelope = _field_text(parts, "envelope", charsets)
    if envelope:
        try:
            env = json.loads(envelope)
            if isinstance(env, dict):
                to_values.extend(str(v) for v in (env.get("to") or []) if v)
                if not from_email and env.get("from"):
                    from_email = str(env["from"]).strip().lower()
        except ValueError:
            pass
    to = sorted({addr.lower() for _, addr in email.utils.getaddresses([v for v in to_values if v]) if addr})
    cc_values = [headers.get("cc", ""), _field_text(parts, "cc", charsets)]
    cc = sorted({addr.lower() for _, addr in email.utils.getaddresses([v for v in cc_values if v]) if addr})
    message_id_tokens = _MESSAGE_ID_RE.findall(headers.get("message-id", ""))
    message_id = message_id_tokens[0] if message_id_tokens else ""
    if not message_id or len(message_id) > 255:
        message_id = f"sha256:{content_hash}"
    return ParsedInbound(
        message_id=message_id,
        in_reply_to=headers.get("in-reply-to", "").strip()[:255],
        references=headers.get("references", "").strip(),
        from_email=from_email[:254],
        to=to,
        subject=subject.strip()[:998],
        text=text,
        html=html,
        headers_text=headers_block,
        headers=headers,
        cc=cc,
    )


# --------------------------------------------------------------------------------------------
# Matching, auto-replies
# --------------------------------------------------------------------------------------------

_SENT_STATUSES = ("sent", "unknown")


@dataclass
class InboundMatch:
    """What a reply answers. ``tenant_id`` is set only when exactly one tenant could be told;
    ``recipient_tenant_ids`` are the tenants its recipients name (empty: none could be told)."""

    outbound: OutboundMessage | None = None
    tenant_id: int | None = None
    recipient_tenant_ids: frozenset[int] = frozenset()


def inbound_recipient_tenant_ids(*, parsed: ParsedInbound) -> frozenset[int]:
    """Tenants the reply was addressed to: To, Cc and the envelope recipients matched against sender
    identities' reply-to and from addresses, and our List-Unsubscribe mailto addresses (whose tag names
    the tenant; the tag's HMAC cannot be checked against an alias, so it is a routing hint only)."""
    from messaging import compliance
    from outreach.tenancy.models import Tenant

    recipients = {address.strip().lower() for address in [*parsed.to, *parsed.cc] if address and address.strip()}
    if not recipients:
        return frozenset()
    tenant_ids = set(
        EmailSenderIdentity.objects.annotate(reply_lower=Lower("reply_to"), from_lower=Lower("from_email"))
        .filter(Q(reply_lower__in=recipients) | Q(from_lower__in=recipients))
        .values_list("tenant_id", flat=True)
    )
    hinted = {compliance.unsubscribe_mailto_tenant_id(address=address) for address in recipients} - {None}
    if hinted - tenant_ids:
        tenant_ids |= set(Tenant.objects.filter(id__in=hinted - tenant_ids).values_list("id", flat=True))
    return frozenset(tenant_ids)


def _latest_sent_by_tenant(*, address: str, tenant_ids: frozenset[int] | None) -> dict[int, OutboundMessage]:
    """Each tenant's latest sent mail to the address (only the given tenants; None: every tenant)."""
    if not address:
        return {}
    messages = OutboundMessage.objects.filter(to_address=address, status__in=_SENT_STATUSES)
    if tenant_ids is not None:
        if not tenant_ids:
            return {}
        messages = messages.filter(tenant_id__in=tenant_ids)
    return {m.tenant_id: m for m in messages.order_by("tenant_id", "-created_at").distinct("tenant_id")}


def inbound_match(*, parsed: ParsedInbound) -> InboundMatch:
    """In-Reply-To first, then References from the newest (our Message-IDs are unguessable: they name
    the message, hence its tenant). Else the tenant(s) the recipients name: with one, that tenant's
    latest sent mail to the sender (none: the reply still belongs to the tenant); with several, the one
    of them that mailed the sender, if only one did. Never another tenant's mail."""
    candidates = _MESSAGE_ID_RE.findall(parsed.in_reply_to) + list(reversed(_MESSAGE_ID_RE.findall(parsed.references)))
    if candidates:
        found = {m.message_id_header: m for m in OutboundMessage.objects.filter(message_id_header__in=candidates)}
        for token in candidates:
            if token in found:
                return InboundMatch(outbound=found[token], tenant_id=found[token].tenant_id)
    tenant_ids = inbound_recipient_tenant_ids(parsed=parsed)
    if not tenant_ids:
        return InboundMatch()
    latest = _latest_sent_by_tenant(address=parsed.from_email, tenant_ids=tenant_ids)
    if len(tenant_ids) == 1:
        [tenant_id] = tenant_ids
        return InboundMatch(outbound=latest.get(tenant_id), tenant_id=tenant_id, recipient_tenant_ids=tenant_ids)
    if len(latest) == 1:
        [(tenant_id, outbound)] = latest.items()
        return InboundMatch(outbound=outbound, tenant_id=tenant_id, recipient_tenant_ids=tenant_ids)
    return InboundMatch(recipient_tenant_ids=tenant_ids)


def inbound_match_outbound(*, parsed: ParsedInbound) -> OutboundMessage | None:
    return inbound_match(parsed=parsed).outbound


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


# --------------------------------------------------------------------------------------------
# Processing a stored delivery
# --------------------------------------------------------------------------------------------

def _engine_event_for(*, classification, auto_reply: bool, stop_request: bool, outbound: OutboundMessage,
                      occurred_at: dt.datetime, inbound_id: int):
    from campaigns.engine import EngineEvent

    detail: dict = {"inbound_message_id": inbound_id}
    if classification is not None:
        detail["confidence"] = round(float(classification.confidence), 3)
    if stop_request:
        event_type = "stop_request"
    elif auto_reply or (classification is not None and classification.label == "ooo"):
        return_date = getattr(classification, "return_date", None)
        detail["return_date"] = return_date.isoformat() if hasattr(return_date, "isoformat") else return_date
        event_type = "reply_ooo"
    elif classification is not None and classification.label in ("positive", "negative", "neutral"):
        event_type = f"reply_{classification.label}"
    else:
        event_type = "reply"
    return EngineEvent(type=event_type, occurred_at=occurred_at, node_id=outbound.node_id or None,
                       node_visit=outbound.node_visit, outbound_message_id=outbound.id, detail=detail)


def _mark_processed(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(id=delivery_id).update(status=WebhookDelivery.Status.PROCESSED,
                                                          processed_at=clock.now(), error="")


def _opt_out(*, tenant_id: int, value: str, detail: str, contact=None) -> None:
    """unsubscribe_record, except that an address the validator refuses is logged, not raised: raising
    would fail the delivery on every retry and lose the reply itself."""
    from messaging import compliance

    try:
        compliance.unsubscribe_record(tenant=tenant_id, channel="email", value=value, source="reply",
                                      detail=detail, contact=contact)
    except compliance.InvalidAddress:
        logger.warning("stop request from %r (tenant %s) not recorded: not a valid address", value, tenant_id)


def _stop_request_opt_outs(*, match: InboundMatch, from_email: str, detail: str) -> None:
    """A stop request is never lost, even when the reply could not be tied to one tenant.

    - matched to a message: that message's address, in its tenant (the usual case); and, when the
      reply comes from another address (the mail was forwarded and a colleague asks to be removed),
      the sender's address too, in the same tenant: the person who asked must be opted out;
    - one tenant told from the recipients, but it never mailed the sender: the sender's address there;
    - ambiguous (several tenants, or none named by the recipients): the address is opted out in every
      candidate tenant that mailed it (the named ones; when none is named, every tenant that did). If
      several tenants are named and none of them mailed it, in each named tenant (the person wrote to
      all of them). A wrong extra opt-out costs a lead; a lost one breaks the law and the person's trust.
    """
    if match.outbound is not None:
        _opt_out(tenant_id=match.outbound.tenant_id, value=match.outbound.to_address, detail=detail,
                 contact=match.outbound.contact)
        if from_email:
            from messaging import compliance

            try:
                sender = compliance.normalise_email(from_email)
            except compliance.InvalidAddress:
                logger.warning("stop request from %r (tenant %s) not recorded for the sender: not a valid address",
                               from_email, match.outbound.tenant_id)
                return
            if sender != match.outbound.to_address.strip().lower():
                _opt_out(tenant_id=match.outbound.tenant_id, value=sender, detail=f"{detail} (sender)"[:300])
        return
    if not from_email:
        return
    if match.tenant_id is not None:
        _opt_out(tenant_id=match.tenant_id, value=from_email, detail=detail)
        return
    ambiguous_detail = f"{detail} (tenant ambiguous)"[:300]
    latest = _latest_sent_by_tenant(address=from_email, tenant_ids=match.recipient_tenant_ids or None)
    for tenant_id, outbound in sorted(latest.items()):
        _opt_out(tenant_id=tenant_id, value=outbound.to_address, detail=ambiguous_detail, contact=outbound.contact)
    if not latest:
        for tenant_id in sorted(match.recipient_tenant_ids):
            _opt_out(tenant_id=tenant_id, value=from_email, detail=ambiguous_detail)


def inbound_delivery_process(*, delivery_id: int) -> InboundMessage | None:
    """Parse, deduplicate, match, classify, store, tell the engine. Returns the new InboundMessage
    (None for a duplicate or a mailto unsubscribe). Raises on failure, leaving nothing half-stored."""
    from messaging import compliance

    delivery = WebhookDelivery.objects.filter(
        id=delivery_id, kind=WebhookDelivery.Kind.SENDGRID_INBOUND,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED],
    ).first()
    if delivery is None:
        return None
    parsed = inbound_parse(body=bytes(delivery.body), content_type=str(delivery.headers.get("content_type", "")))

    target = compliance.unsubscribe_target_from_mail(to_addresses=[*parsed.to, *parsed.cc],
                                                     from_address=parsed.from_email, subject=parsed.subject)
    if target is not None:
        # Mail to our List-Unsubscribe mailto: an opt-out, not a reply.
        with transaction.atomic():
            compliance.unsubscribe_record(tenant=target.tenant_id, channel=target.channel, value=target.value,
                                          source="one_click", detail="List-Unsubscribe mailto")
            _mark_processed(delivery_id)
        return None

    if InboundMessage.objects.filter(message_id_header=parsed.message_id).exists():
        _mark_processed(delivery_id)
        return None
    match = inbound_match(parsed=parsed)
    outbound = match.outbound
    tenant = None
    if match.tenant_id is not None:
        from outreach.tenancy.models import Tenant

        tenant = outbound.tenant if outbound is not None else Tenant.objects.filter(id=match.tenant_id).first()
    auto_reply = is_auto_reply(headers=parsed.headers, subject=parsed.subject, text=parsed.text)
    # When the reply reached us, not when this (maybe retried) processing runs: a `within` window the
    # reply really met must still count, and relative dates ("back Monday") are read from that day.
    received_at = delivery.received_at
    # The classifier may call the AI over the network: do it before opening the transaction.
    from outreach.ai.replies import classify_reply

    classification = classify_reply(tenant=tenant, subject=parsed.subject,
                                    text=reply_text_without_quote(parsed.text), headers=parsed.headers,
                                    received_at=received_at)
    label = "ooo" if auto_reply else classification.label
    now = clock.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                inbound = InboundMessage.objects.create(
                    tenant=tenant, outbound_message=outbound, webhook_delivery_id=delivery_id,
                    message_id_header=parsed.message_id, in_reply_to=parsed.in_reply_to,
                    references=parsed.references, from_email=parsed.from_email, to_email=", ".join(parsed.to),
                    subject=parsed.subject, text=parsed.text, html=parsed.html, headers=parsed.headers_text,
                    is_auto_reply=auto_reply, classification=label,
                    classification_confidence=classification.confidence,
                    stop_request=bool(classification.stop_request) and not auto_reply,
                    return_date=classification.return_date, processed_at=now,
                )
        except IntegrityError:
            # The same reply arrived twice at once; the other copy is the one that counts.
            _mark_processed(delivery_id)
            return None
        if outbound is not None and outbound.contact_campaign_id:
            from campaigns.services import contact_campaign_handle_event

            event = _engine_event_for(classification=classification, auto_reply=auto_reply,
                                      stop_request=inbound.stop_request, outbound=outbound, occurred_at=received_at,
                                      inbound_id=inbound.id)
            contact_campaign_handle_event(contact_campaign_id=outbound.contact_campaign_id, event=event)
        if inbound.stop_request:
            # After the engine event (which records the transition at the node the reply answers):
            # this stops every other active campaign of the address too.
            _stop_request_opt_outs(match=match, from_email=parsed.from_email,
                                   detail=f"reply {parsed.message_id}"[:300])
        _mark_processed(delivery_id)
    return inbound
