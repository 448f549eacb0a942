"""Delivery: hand queued outbox rows to SendGrid, exactly once, with policy checked at send time.

Life of an outbox row here (architecture rule 4, "never send twice"):

    queued --claim--> sending --202--> sent
                         |------> queued      (held by policy, over a send rate limit, 429, 5xx/refused:
                         |                     re-armed by campaigns.services.send_action_reschedule)
                         |------> suppressed  (unsubscribed / suppressed / invalid address)
                         |------> canceled    (its contact campaign or campaign is over)
                         |------> failed      (400/401/403/413, or transient errors past the bound)
                         '------> unknown     (timeout / connection lost AFTER the request went out)

The claim is one conditional UPDATE ... WHERE status = 'queued' RETURNING for the whole batch:
two workers handed the same ids never both get a row. Before the HTTP request, the row's
Message-ID and ``send_started_at`` are committed; that marker is what lets lease recovery tell a
claim that never reached SendGrid (safe to re-queue) from one that may have (``unknown``: never
resent blindly; a later webhook event for it settles it as sent, an operator sees the rest).

Policy is checked twice per claim (architecture rule 5): once for the whole batch after the claim, and
again, in SQL, by the very statement that records the request start, so an opt-out or a pause that lands
while earlier messages of the batch are on the wire still stops the later ones.

The engine hears the outcomes once per batch, after the batch. If that call fails or the worker dies
first, ``outbound_messages_feed_lost_events`` (run by the ``recover_stale_sends`` beat task) finds the
rows whose contact campaign never heard and feeds them again.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import nh3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.rate_limits import RateLimitCandidate, send_rate_limits_release, send_rate_limits_reserve
from messaging.sendgrid import client as sg
from messaging.sendgrid.errors import SendGridError, SendGridErrorKind
from outreach import clock

logger = logging.getLogger(__name__)

HOLD_RECHECK = dt.timedelta(minutes=15)  # a held message looks again this much later
MAX_SEND_ATTEMPTS = 5  # HTTP attempts that ended in 5xx / refused before the message fails
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600
AMBIGUOUS_PAUSE = dt.timedelta(minutes=1)  # after an ambiguous error the rest of the batch waits this long
SENDING_LEASE = dt.timedelta(minutes=10)  # far above the request timeout: a live worker is done by then
# Lost-event sweep (outbound_messages_feed_lost_events): a settled row whose outcome the engine has not heard
# this long after is fed again. Clock time, like the rows' timestamps (setting LOST_SEND_EVENTS_GRACE_SECONDS).
LOST_EVENT_GRACE_SECONDS = 60
# How far back it looks, in REAL time (multiplied by CLOCK_SPEED: the demo's beat still ticks every real
# minute). Only a sweep outage longer than this loses an event for good. It is also what each pass costs:
# one index entry and one primary-key probe per message settled in the window (measured: ~85 ms for the
# 62,000 sends of 6 hours at 3 a second); setting LOST_SEND_EVENTS_LOOKBACK (a timedelta).
LOST_EVENT_LOOKBACK = dt.timedelta(hours=6)
LOST_EVENT_PAGE_SIZE = 500  # one engine call per page
LOST_EVENT_MAX_PAGES = 20  # per outcome and pass: up to 10,000 of each fed a minute, the rest the next minute

_URL_RE = re.compile(r"https?://[^\s<>\"']+")
_ALLOWED_TAGS = {"a", "b", "strong", "i", "em", "u", "p", "br", "ul", "ol", "li", "blockquote", "span", "div",
                 "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "td", "th", "hr", "small", "code", "pre"}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    rate_limited: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    not_claimed: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

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


def new_message_id(*, from_email: str) -> str:
    """Our own RFC 5322 Message-ID, on the sender's domain (aligned with From)."""
    domain = from_email.rsplit("@", 1)[-1].strip().lower() if "@" in from_email else ""
    if not domain:
        from urllib.parse import urlsplit

        domain = urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


def _ascii_category(value: str) -> str:
    return value.encode("ascii", "ignore").decode("ascii")[:255]


@dataclass
class Thread:
    in_reply_to: str = ""
    references: str = ""
    first_subject: str = ""


def mail_body(*, message: OutboundMessage, sender: EmailSenderIdentity, message_id: str, thread: Thread,
              subject: str) -> dict[str, Any]:
    """The /v3/mail/send body for one message (one recipient)."""
    from messaging import compliance

    unsubscribe_url = compliance.unsubscribe_url(tenant=message.tenant_id, channel="email", value=message.to_address)
    text_part, html_part = message_render(body_text=message.body_text, body_html=message.body_html,
                                          unsubscribe_url=unsubscribe_url)
    headers = {"Message-ID": message_id}
    headers.update(compliance.list_unsubscribe_headers(tenant=message.tenant_id, channel="email",
                                                       value=message.to_address))
    if thread.in_reply_to:
        headers["In-Reply-To"] = thread.in_reply_to
        headers["References"] = thread.references
    cc = message.contact_campaign
    campaign_id = cc.campaign_id if cc is not None else None
    custom_args = {
        "tenant_id": str(message.tenant_id),
        "campaign_id": str(campaign_id) if campaign_id else "",
        "contact_campaign_id": str(message.contact_campaign_id) if message.contact_campaign_id else "",
        "node_id": message.node_id,
        "outbound_message_id": str(message.id),
    }
    recipient: dict[str, str] = {"email": message.to_address}
    contact_name = message.contact.full_name if message.contact is not None else ""
    if contact_name:
        recipient["name"] = contact_name
    sender_block: dict[str, str] = {"email": sender.from_email}
    if sender.from_name:
        sender_block["name"] = sender.from_name
    categories = [c for c in (_ascii_category(f"campaign-{campaign_id}") if campaign_id else "",
                              _ascii_category(f"node-{message.node_id}") if message.node_id else "") if c]
    body: dict[str, Any] = {
        "personalizations": [{"to": [recipient], "custom_args": {k: v for k, v in custom_args.items() if v}}],
        "from": sender_block,
        "reply_to": {"email": sender.reply_to or sender.from_email},
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


def _subject(message: OutboundMessage, thread: Thread) -> str:
    if message.subject.strip():
        return message.subject.strip()
    if thread.first_subject:
        base = re.sub(r"^(re:\s*)+", "", thread.first_subject.strip(), flags=re.IGNORECASE)
        return f"Re: {base}"
    return ""


# --------------------------------------------------------------------------------------------
# Claim, policy, outcomes
# --------------------------------------------------------------------------------------------

def _claim(ids: list[int], now: dt.datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages SET status = 'sending', claimed_at = %s, send_started_at = NULL, "
            "updated_at = %s WHERE id = ANY(%s) AND status = 'queued' RETURNING id",
            [now, now, ids],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _mine(message: OutboundMessage, claimed_at: dt.datetime):
    """Rows still held by this claim (a lease recovery may have taken a row back)."""
    return OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at,
                                          status=OutboundMessage.Status.SENDING)


def _sender_for(message: OutboundMessage) -> EmailSenderIdentity | None:
    if message.sender_identity is not None:
        return message.sender_identity
    cc = message.contact_campaign
    return cc.campaign.sender_identity if cc is not None else None


def send_policy(*, message: OutboundMessage, global_stop: bool, block_reason: str | None) -> tuple[str, str] | None:
    """What policy says about sending this message now: None (send), or (action, reason) with
    action in cancel / suppress / hold. Policy beats plans (architecture rule 5)."""
    from campaigns.models import Campaign, ContactCampaign

    cc = message.contact_campaign
    campaign = cc.campaign if cc is not None else None
    if cc is not None and cc.status in ContactCampaign.FINAL_STATUSES:
        return "cancel", f"contact_campaign_{cc.status}"
    if cc is not None and (cc.current_node_id, cc.node_visit) != (message.node_id, message.node_visit):
        # The campaign moved past this message's node visit while it was `sending` (leaving a node cancels
        # only `queued` rows): never sent late (docs/engine.md).
        return "cancel", "node left before sending"
    if campaign is not None and campaign.status in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED):
        return "cancel", f"campaign_{campaign.status}"
    if block_reason:
        return "suppress", block_reason
    if global_stop:
        return "hold", "global_stop"
    if message.tenant.sending_paused:
        return "hold", "tenant_paused"
    if campaign is not None and campaign.status != Campaign.Status.ACTIVE:
        return "hold", f"campaign_{campaign.status}"
    if cc is not None and cc.status != ContactCampaign.Status.ACTIVE:
        return "hold", f"contact_campaign_{cc.status}"
    sender = _sender_for(message)
    if sender is None:
        return "hold", "no_sender_identity"
    if sender.is_paused:
        return "hold", "sender_paused"
    if sender.status != EmailSenderIdentity.Status.VERIFIED:
        return "hold", f"sender_{sender.status}"
    return None


# The statement that records the request start (step 4) also re-checks policy, in the same statement so
# there is no gap between check and mark: the batch-start check may be minutes old by the time a message's
# turn comes (up to 500 requests of up to 10 s each), and an opt-out or a pause must win. It is
# `send_policy`'s "send" verdict in SQL. Keys are literals from the batch's read (not correlated to the
# row), so each sub-select is a stand-alone primary or unique key probe that PostgreSQL runs once (an
# InitPlan) whatever the table sizes. Raw SQL: the ORM spelling cost ~2 ms of Python per message.
# settings.OUTREACH_SENDING_STOPPED is not in the database: the caller checks it in Python.
_START_REQUEST_SQL = """
    UPDATE outbound_messages
    SET message_id_header = %(message_id)s, in_reply_to = %(in_reply_to)s, "references" = %(references)s,
        subject = %(subject)s, sender_identity_id = %(sender_id)s, send_started_at = %(now)s,
        attempts = attempts + 1, updated_at = %(now)s
    WHERE id = %(id)s AND claimed_at = %(claimed_at)s AND status = 'sending'
      AND NOT EXISTS (SELECT 1 FROM global_sending_switch WHERE id = 1 AND sending_stopped)
      AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s AND sending_paused)
      AND EXISTS (SELECT 1 FROM email_sender_identities
                  WHERE id = %(sender_id)s AND NOT is_paused AND status = 'verified')
      AND NOT EXISTS (SELECT 1 FROM contact_unsubscribes
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email' AND channel_value = %(address)s)
      AND NOT EXISTS (SELECT 1 FROM communication_suppressions
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email' AND value = %(address)s
                        AND (expires_at IS NULL OR expires_at > %(now)s))
      AND NOT EXISTS (SELECT 1 FROM communication_suppressions
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email_domain' AND value = %(domain)s
                        AND (expires_at IS NULL OR expires_at > %(now)s))
"""
_START_REQUEST_CAMPAIGN_SQL = """
      AND EXISTS (SELECT 1 FROM contact_campaigns WHERE id = %(contact_campaign_id)s AND status = 'active'
                  AND current_node_id = %(node_id)s AND node_visit = %(node_visit)s)
      AND EXISTS (SELECT 1 FROM campaigns WHERE id = %(campaign_id)s AND status = 'active')
"""


def _start_request(message: OutboundMessage, *, claimed_at: dt.datetime, sender: EmailSenderIdentity,
                   message_id: str, thread: Thread, subject: str) -> bool:
    """Record the request start (committed before the request) if the claim is still ours AND policy
    still allows the send; False otherwise (nothing written)."""
    from messaging import compliance

    if settings.OUTREACH_SENDING_STOPPED:
        return False
    # The batch-start check suppressed invalid addresses, so this one normalises.
    address = compliance.normalise_email(message.to_address)
    sql = _START_REQUEST_SQL
    params: dict[str, Any] = {
        "message_id": message_id, "in_reply_to": thread.in_reply_to[:255], "references": thread.references,
        "subject": subject[:300], "sender_id": sender.id, "now": clock.now(), "id": message.id,
        "claimed_at": claimed_at, "tenant_id": message.tenant_id, "address": address,
        "domain": address.rsplit("@", 1)[1],
    }
    cc = message.contact_campaign
    if cc is not None:
        sql += _START_REQUEST_CAMPAIGN_SQL
        params.update(contact_campaign_id=cc.id, campaign_id=cc.campaign_id, node_id=message.node_id,
                      node_visit=message.node_visit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _hold(message: OutboundMessage, *, claimed_at: dt.datetime, reason: str, not_before: dt.datetime,
          last_error: str | None = None, undo_attempt: bool = False) -> bool:
    """Back to queued and re-armed, atomically: if re-arming fails the row stays `sending` and lease
    recovery (which knows the request did not go out) re-queues it."""
    from campaigns.services import send_action_reschedule

    updates: dict[str, Any] = {"status": OutboundMessage.Status.QUEUED, "status_reason": reason[:300],
                               "claimed_at": None, "next_attempt_at": not_before, "updated_at": clock.now()}
    if last_error is not None:
        updates["last_error"] = last_error
    if undo_attempt:
        updates["attempts"] = F("attempts") - 1
    with transaction.atomic():
        if not _mine(message, claimed_at).update(**updates):
            return False
        action = send_action_reschedule(outbound_message_id=message.id, not_before=not_before, reason=reason)
    if action is None:
        # No contact campaign to re-arm it for (or it just ended): nothing will retry this row.
        logger.warning("outbound message %s held (%s) but no send action was re-armed", message.id, reason)
    return True


def _finish(message: OutboundMessage, *, claimed_at: dt.datetime, statuses: tuple[str, ...], **updates) -> bool:
    updates.setdefault("updated_at", clock.now())
    return bool(OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at, status__in=statuses)
                .update(**updates))


def _settle_by_policy(message: OutboundMessage, verdict: tuple[str, str], *, claimed_at: dt.datetime,
                      report: DeliveryReport, engine_items: list[tuple],
                      hold_until: dt.datetime | None = None) -> None:
    """Carry out a `send_policy` refusal on a claimed row; the one path for both policy checks."""
    action, reason = verdict
    if action == "cancel":
        if _finish(message, claimed_at=claimed_at, statuses=(OutboundMessage.Status.SENDING,),
                   status=OutboundMessage.Status.CANCELED, status_reason=reason):
            report.canceled.append(message.id)
    elif action == "suppress":
        if _finish(message, claimed_at=claimed_at, statuses=(OutboundMessage.Status.SENDING,),
                   status=OutboundMessage.Status.SUPPRESSED, status_reason=reason):
            report.suppressed.append(message.id)
            engine_items.append(_engine_event(message, "suppressed", clock.now(), {"reason": reason}))
    else:
        not_before = hold_until or clock.now() + getattr(settings, "SENDING_HOLD_RECHECK", HOLD_RECHECK)
        if _hold(message, claimed_at=claimed_at, reason=reason, not_before=not_before):
            report.held.append(message.id)


def _settle_refused_start(message: OutboundMessage, *, claimed_at: dt.datetime, report: DeliveryReport,
                          engine_items: list[tuple]) -> None:
    """The request-start statement matched nothing: the claim was taken back, or policy changed since the
    batch-start check. Read this one row again to tell which, and settle it as that check would have."""
    from messaging import compliance
    from outreach.tenancy.selectors import global_sending_stopped

    fresh = (
        OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at, status=OutboundMessage.Status.SENDING)
        .select_related("tenant", "sender_identity", "contact_campaign__campaign__sender_identity")
        .first()
    )
    if fresh is None:
        report.not_claimed.append(message.id)
        return
    block_reason = compliance.send_block_reason(tenant_id=fresh.tenant_id, channel=compliance.CHANNEL_EMAIL,
                                                value=fresh.to_address)
    verdict = send_policy(message=fresh, global_stop=global_sending_stopped(), block_reason=block_reason)
    hold_until = None
    if verdict is None:
        # What refused the start was undone in between (a pause lifted, a suppression expired): never send
        # on a check the guarded statement did not make; the dispatcher hands it back at once.
        verdict, hold_until = ("hold", "policy_changed_during_batch"), clock.now()
    logger.info("outbound message %s: policy changed during its batch (%s: %s)", message.id, *verdict)
    _settle_by_policy(fresh, verdict, claimed_at=claimed_at, report=report, engine_items=engine_items,
                      hold_until=hold_until)


def _engine_event(message: OutboundMessage, event_type: str, occurred_at: dt.datetime, detail: dict | None = None):
    from campaigns.engine import EngineEvent

    return (message.contact_campaign_id, EngineEvent(
        type=event_type, occurred_at=occurred_at, node_id=message.node_id or None, node_visit=message.node_visit,
        outbound_message_id=message.id, detail=detail or {},
    ))


def _feed_engine(items: list[tuple]) -> None:
    items = [item for item in items if item[0]]
    if not items:
        return
    from campaigns.services import contact_campaign_handle_event, contact_campaigns_handle_events

    try:
        with transaction.atomic():
            contact_campaigns_handle_events(items=items)
    except Exception:  # noqa: BLE001 - one bad contact campaign must not hold back the others' events
        logger.exception("engine batch failed; feeding %d events one by one", len(items))
        for cc_id, event in items:
            try:
                with transaction.atomic():
                    contact_campaign_handle_event(contact_campaign_id=cc_id, event=event)
            except Exception:  # noqa: BLE001
                # Not lost: the row's status is committed, and outbound_messages_feed_lost_events feeds
                # this outcome again once it is LOST_EVENT_GRACE_SECONDS old (every minute until it sticks).
                logger.exception("engine event %s for contact campaign %s failed; the stale-send sweep "
                                 "feeds it again", event.type, cc_id)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)))


def _threads(messages: list[OutboundMessage]) -> dict[int, list[dict]]:
    from messaging.selectors import outbound_thread_messages

    cc_ids = {m.contact_campaign_id for m in messages if m.contact_campaign_id}
    return outbound_thread_messages(contact_campaign_ids=cc_ids) if cc_ids else {}


def _thread_for(message: OutboundMessage, threads: dict[int, list[dict]]) -> Thread:
    earlier = [row for row in threads.get(message.contact_campaign_id or 0, []) if row["id"] < message.id]
    if not earlier:
        return Thread()
    ids = [row["message_id_header"] for row in earlier]
    return Thread(in_reply_to=ids[-1], references=" ".join(ids), first_subject=earlier[0]["subject"])


@dataclass
class _Breaker:
    """After a 429, 5xx or ambiguous error the rest of the batch waits instead of hammering SendGrid."""
    reason: str
    not_before: dt.datetime


def _send(message: OutboundMessage, *, claimed_at: dt.datetime, thread: Thread, report: DeliveryReport,
          engine_items: list[tuple]) -> _Breaker | None:
    sender = _sender_for(message)
    assert sender is not None  # send_policy held the message otherwise
    message_id = message.message_id_header or new_message_id(from_email=sender.from_email)
    subject = _subject(message, thread)
    body = mail_body(message=message, sender=sender, message_id=message_id, thread=thread, subject=subject)
    # Commit the identity of the mail and the "request started" marker BEFORE the request goes out, only
    # while policy still allows the send (checked again by that same statement, see _START_REQUEST_SQL).
    if not _start_request(message, claimed_at=claimed_at, sender=sender, message_id=message_id, thread=thread,
                          subject=subject):
        _settle_refused_start(message, claimed_at=claimed_at, report=report, engine_items=engine_items)
        return None
    attempts = message.attempts + 1
    try:
        result = sg.mail_send(body=body)
    except SendGridError as exc:
        return _on_error(message, exc, claimed_at=claimed_at, attempts=attempts, report=report,
                         engine_items=engine_items)
    now = clock.now()
    # `unknown` too: a lease recovery may have judged us dead while the answer was on its way.
    if _finish(message, claimed_at=claimed_at,
               statuses=(OutboundMessage.Status.SENDING, OutboundMessage.Status.UNKNOWN),
               status=OutboundMessage.Status.SENT, sent_at=now, provider_message_id=result.message_id,
               status_reason="", last_error="", next_attempt_at=None):
        report.sent.append(message.id)
        engine_items.append(_engine_event(message, "sent", now))
    return None


def _on_error(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime, attempts: int,
              report: DeliveryReport, engine_items: list[tuple]) -> _Breaker | None:
    now = clock.now()
    sending = (OutboundMessage.Status.SENDING,)
    if exc.kind == SendGridErrorKind.PERMANENT:
        logger.warning("message %s refused permanently: %s", message.id, exc)
        if _finish(message, claimed_at=claimed_at, statuses=sending, status=OutboundMessage.Status.FAILED,
                   status_reason=f"http_{exc.status_code}", last_error=exc.message[:4000]):
            report.failed.append(message.id)
            engine_items.append(_engine_event(message, "send_failed", now,
                                              {"status_code": exc.status_code, "reason": exc.message[:300]}))
        return None
    if exc.kind == SendGridErrorKind.RATE_LIMITED:
        reset_at = exc.reset_at or now + dt.timedelta(minutes=1)
        # A 429 is not the message's fault: it does not count towards the retry bound.
        if _hold(message, claimed_at=claimed_at, reason="rate_limited", not_before=reset_at,
                 last_error=exc.message[:4000], undo_attempt=True):
            report.rate_limited.append(message.id)
        return _Breaker("rate_limited", reset_at)
    if exc.kind == SendGridErrorKind.TRANSIENT:
        max_attempts = getattr(settings, "SENDGRID_SEND_MAX_ATTEMPTS", MAX_SEND_ATTEMPTS)
        if attempts >= max_attempts:
            if _finish(message, claimed_at=claimed_at, statuses=sending, status=OutboundMessage.Status.FAILED,
                       status_reason="transient_errors_exhausted",
                       last_error=f"gave up after {attempts} attempts; last: {exc}"[:4000]):
                report.failed.append(message.id)
                engine_items.append(_engine_event(message, "send_failed", now,
                                                  {"status_code": exc.status_code, "reason": str(exc)[:300],
                                                   "attempts": attempts}))
            return _Breaker("transient_error", now + backoff(1))
        not_before = now + backoff(attempts)
        if _hold(message, claimed_at=claimed_at, reason="transient_error", not_before=not_before,
                 last_error=str(exc)[:4000]):
            report.retrying.append(message.id)
        return _Breaker("transient_error", not_before)
    # AMBIGUOUS: the mail may be out. Never resend; webhook events settle it.
    logger.error("message %s: ambiguous send outcome, marked unknown: %s", message.id, exc)
    if _finish(message, claimed_at=claimed_at, statuses=sending, status=OutboundMessage.Status.UNKNOWN,
               status_reason="ambiguous: no answer after the request was sent", last_error=str(exc)[:4000]):
        report.unknown.append(message.id)
    return _Breaker("after_ambiguous_error", now + AMBIGUOUS_PAUSE)


def _rate_limit_candidate(message: OutboundMessage) -> RateLimitCandidate:
    sender = _sender_for(message)
    assert sender is not None  # send_policy held the message otherwise
    return RateLimitCandidate(message_id=message.id, tenant_id=message.tenant_id, sender_email=sender.from_email,
                              to_address=message.to_address,
                              warmup_started_on=sender.ip_warmup_started_on)


def outbound_messages_deliver(*, outbound_message_ids: list[int]) -> DeliveryReport:
    """Claim, check policy, render and send a batch of queued messages; tell the engine once."""
    from messaging import compliance
    from outreach.tenancy.selectors import global_sending_stopped

    report = DeliveryReport()
    ids = sorted({int(i) for i in outbound_message_ids})
    if not ids:
        return report
    claimed_at = clock.now()
    claimed = _claim(ids, claimed_at)
    report.not_claimed = sorted(set(ids) - set(claimed))
    if not claimed:
        return report
    messages = list(
        OutboundMessage.objects.filter(id__in=claimed)
        .select_related("tenant", "contact", "sender_identity", "contact_campaign__campaign__sender_identity")
        .order_by("id")
    )
    global_stop = global_sending_stopped()
    blocks: dict[tuple[int, str], str] = {}
    by_tenant: dict[int, list[str]] = {}
    for message in messages:
        by_tenant.setdefault(message.tenant_id, []).append(message.to_address)
    for tenant_id, addresses in by_tenant.items():
        for address, reason in compliance.send_block_reasons(tenant_id=tenant_id, channel="email",
                                                             values=addresses).items():
            blocks[(tenant_id, address)] = reason
    threads = _threads(messages)
    engine_items: list[tuple] = []
    sendable: list[OutboundMessage] = []
    for message in messages:
        try:
            verdict = send_policy(message=message, global_stop=global_stop,
                                  block_reason=blocks.get((message.tenant_id, message.to_address)))
            if verdict is None:
                sendable.append(message)
                continue
            _settle_by_policy(message, verdict, claimed_at=claimed_at, report=report, engine_items=engine_items)
        except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
            # The row stays `sending`; lease recovery re-queues it if the request never started,
            # or marks it unknown if it did.
            logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
    # Rate limits after policy (a suppressed or held message must not use up room) and before any
    # request: one Redis round trip for the whole batch.
    limits = send_rate_limits_reserve(candidates=[_rate_limit_candidate(m) for m in sendable])
    breaker: _Breaker | None = None
    for message in sendable:
        try:
            deferral = limits.deferred.get(message.id)
            if deferral is not None:
                # Over a cap: deferred to when its window has room, never dropped; no attempt counted.
                if _hold(message, claimed_at=claimed_at, reason=deferral.reason, not_before=deferral.not_before):
                    report.rate_limited.append(message.id)
                continue
            if breaker is not None:
                if _hold(message, claimed_at=claimed_at, reason=f"batch_paused:{breaker.reason}",
                         not_before=breaker.not_before):
                    report.held.append(message.id)
                continue
            breaker = _send(message, claimed_at=claimed_at, thread=_thread_for(message, threads), report=report,
                            engine_items=engine_items)
        except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
            logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
            # It may have reached SendGrid: its reserved room stays used.
            limits.charged.pop(message.id, None)
    # Room reserved for messages that did not go out (429/5xx/breaker holds, refusals) is given back;
    # sent and unknown (may have gone out) ones keep it.
    gone = set(report.sent) | set(report.unknown)
    send_rate_limits_release(decision=limits, message_ids=[i for i in limits.charged if i not in gone])
    _feed_engine(engine_items)
    return report


def outbound_messages_recover_stale(*, lease: dt.timedelta | None = None) -> dict[str, list[int]]:
    """What a dead worker left behind (beat task ``campaign_execution.recover_stale_sends``, every minute).

    Rows left in `sending` past the lease (the worker died between claim and outcome):

    - ``send_started_at`` empty: the request provably never went out -> back to queued, re-armed now.
    - ``send_started_at`` set: it may have gone out -> ``unknown`` (never resent blindly; a webhook
      event for it settles it as sent, otherwise an operator decides).

    Then outcomes the engine never heard (``outbound_messages_feed_lost_events``), run even if the first
    part failed: ``refed`` lists the messages whose outcome was fed again.
    """
    try:
        unknown, requeued = _recover_stale_claims(lease=lease)
    finally:
        refed = outbound_messages_feed_lost_events()
    return {"unknown": unknown, "requeued": requeued, "refed": sorted(i for ids in refed.values() for i in ids)}


def _recover_stale_claims(*, lease: dt.timedelta | None) -> tuple[list[int], list[int]]:
    from campaigns.services import send_action_reschedule

    now = clock.now()
    cutoff = now - (lease or getattr(settings, "SENDING_LEASE", SENDING_LEASE))
    requeued: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages SET status = 'unknown', updated_at = %s, "
            "status_reason = 'ambiguous: worker lost after the request started' "
            "WHERE status = 'sending' AND claimed_at < %s AND send_started_at IS NOT NULL RETURNING id",
            [now, cutoff],
        )
        unknown = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT id FROM outbound_messages WHERE status = 'sending' AND claimed_at < %s "
            "AND send_started_at IS NULL ORDER BY id LIMIT 1000",
            [cutoff],
        )
        candidates = [row[0] for row in cursor.fetchall()]
    for message_id in candidates:
        with transaction.atomic():
            moved = OutboundMessage.objects.filter(
                id=message_id, status=OutboundMessage.Status.SENDING, claimed_at__lt=cutoff,
                send_started_at__isnull=True,
            ).update(status=OutboundMessage.Status.QUEUED, claimed_at=None, next_attempt_at=now,
                     status_reason="lease expired before the request started", updated_at=now)
            if moved:
                send_action_reschedule(outbound_message_id=message_id, not_before=now,
                                       reason="lease expired before send")
                requeued.append(message_id)
    if unknown or requeued:
        logger.warning("stale sends: %d marked unknown, %d re-queued", len(unknown), len(requeued))
    return unknown, requeued


# Outcome (row status) -> the engine event delivery feeds for it.
_OUTCOME_EVENTS = {
    OutboundMessage.Status.SENT: "sent",
    OutboundMessage.Status.SUPPRESSED: "suppressed",
    OutboundMessage.Status.FAILED: "send_failed",
}

# Settled messages whose contact campaign is still at that message's node visit without having heard of it:
# the engine call after the batch failed or the worker died before it. (A heard `sent` sets node_sent_at; a
# heard `suppressed` / `send_failed` ends the contact campaign, so it is no longer active or paused.)
#
# Plan: driven from outbound_messages by the om_status_updated (status, updated_at) index, one equality and
# one range, the window being [now - lookback, now - grace): only recently settled rows are read, each joined
# to its contact campaign by primary key (nested loop), then filtered. Not from contact_campaigns: its
# status index leads with tenant_id (no use across tenants), and "active with node_sent_at NULL" is every
# contact campaign whose send is queued, held or waiting, a set unrelated to recency that grows with the
# backlog. Settling bumps updated_at (sent, suppressed, failed, and the webhook's unknown -> sent), later
# updates only move it forward, so every settled row spends the whole lookback inside the window.
# Keyset pages on (updated_at, id): a page of rows the engine keeps refusing cannot starve later ones.
_LOST_EVENTS_SQL = """
    SELECT om.id, om.contact_campaign_id, om.node_id, om.node_visit, om.sent_at, om.updated_at, om.status_reason
    FROM outbound_messages om
    JOIN contact_campaigns cc ON cc.id = om.contact_campaign_id
    WHERE om.status = %(status)s
      AND om.updated_at >= %(after_at)s AND om.updated_at < %(until)s
      AND (om.updated_at, om.id) > (%(after_at)s, %(after_id)s)
      AND cc.status IN ('active', 'paused')
      AND cc.current_node_id = om.node_id AND cc.node_visit = om.node_visit
      AND cc.node_sent_at IS NULL
    ORDER BY om.updated_at, om.id
    LIMIT %(limit)s
"""


def outbound_messages_feed_lost_events(*, grace: dt.timedelta | None = None, lookback: dt.timedelta | None = None,
                                       page_size: int = LOST_EVENT_PAGE_SIZE,
                                       max_pages: int = LOST_EVENT_MAX_PAGES) -> dict[str, list[int]]:
    """Feed the engine the `sent` / `suppressed` / `send_failed` it never heard; returns message ids by event.

    Delivery tells the engine once per batch, after the batch (the hot path stays batched); a worker that
    dies or an engine call that fails in between would otherwise leave the node without its timeouts for
    good. Anything settled more than ``grace`` ago (clock time) and at most ``lookback`` ago (real time)
    whose contact campaign has not heard is fed again, in one engine call per page. Feeding twice is
    harmless: the engine records a second `sent` as a duplicate and arms nothing, and a finished contact
    campaign only records a policy event.
    """
    from campaigns.engine import EngineEvent

    now = clock.now()
    grace = grace if grace is not None else dt.timedelta(
        seconds=getattr(settings, "LOST_SEND_EVENTS_GRACE_SECONDS", LOST_EVENT_GRACE_SECONDS))
    lookback = lookback or getattr(settings, "LOST_SEND_EVENTS_LOOKBACK", LOST_EVENT_LOOKBACK)
    until = now - grace
    since = now - lookback * getattr(settings, "CLOCK_SPEED", 1.0)
    fed: dict[str, list[int]] = {event: [] for event in _OUTCOME_EVENTS.values()}
    for status, event_type in _OUTCOME_EVENTS.items():
        after_at, after_id = since, 0
        for _ in range(max_pages):
            with connection.cursor() as cursor:
                cursor.execute(_LOST_EVENTS_SQL, {"status": status, "after_at": after_at, "after_id": after_id,
                                                  "until": until, "limit": page_size})
                rows = cursor.fetchall()
            if not rows:
                break
            items = []
            for message_id, cc_id, node_id, node_visit, sent_at, updated_at, status_reason in rows:
                detail: dict[str, Any] = {"recovered": True}
                if event_type != "sent" and status_reason:
                    detail["reason"] = status_reason
                items.append((cc_id, EngineEvent(
                    type=event_type, occurred_at=sent_at if event_type == "sent" else updated_at,
                    node_id=node_id or None, node_visit=node_visit, outbound_message_id=message_id, detail=detail,
                )))
                fed[event_type].append(message_id)
            _feed_engine(items)
            after_at, after_id = rows[-1][5], rows[-1][0]
            if len(rows) < page_size:
                break
    if any(fed.values()):
        logger.warning("engine had not heard of %s; fed again",
                       ", ".join(f"{len(ids)} {event}" for event, ids in fed.items() if ids))
    return fed
