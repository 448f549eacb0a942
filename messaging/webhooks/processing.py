"""Storing raw webhook deliveries and turning SendGrid event batches into MessageEvents.

Hot path (thousands of events a second), so everything is done per batch of deliveries in
ONE transaction: one deduplicating INSERT ... ON CONFLICT DO NOTHING for the events, one
UPDATE for delivery statuses, one engine call for all transitions. Because the event insert
and the engine feed commit together, a retry after any failure sees the same events as new
again and feeds them exactly once; events already stored are never fed twice.

Duplicates are normal (providers.md): the same event can arrive many times, sometimes with a
new ``sg_event_id``. Two unique keys catch both: ``(provider, provider_event_id)`` and the
content ``dedupe_key`` (message, recipient, event, timestamp, url/reason).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction

from messaging.models import OutboundMessage, WebhookDelivery
from outreach import clock

logger = logging.getLogger(__name__)

PROCESS_TASK = "webhooks.process_deliveries"
MAX_PROCESS_ATTEMPTS = 10
INSERT_CHUNK = 5000
SOFT_BOUNCE_THRESHOLD = 3
SOFT_BOUNCE_WINDOW = dt.timedelta(days=7)
SOFT_BOUNCE_SUPPRESSION = dt.timedelta(hours=72)
SCANNER_CLICK_WINDOW_SECONDS = 10
PENDING_GRACE = dt.timedelta(minutes=2)
ABSORB_PENDING = 4  # other waiting deliveries a process_deliveries task folds into its transaction
# An event without custom args or sg_message_id (asynchronous bounce) names only the address: it is linked
# to the address's latest message only when exactly one tenant mailed the address within this window.
# (Address-level policy - hard bounce, opt-out, complaint - is not limited by it: see
# _address_tenants_beyond_window.)
ADDRESS_FALLBACK_DAYS = 30

# Link scanners and security gateways that fetch every link (and often the pixel) of a mail.
SCANNER_USER_AGENT = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|trend ?micro|symantec|forcepoint|"
    r"cisco|ironport|fireeye|sophos|checkpoint|zscaler|scanner|linkscan|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|go-http-client|curl/|wget/|java/|okhttp|libwww|bot\b|crawler|spider",
    re.IGNORECASE,
)

# SendGrid event -> engine event type (others only update the delivery status or nothing).
ENGINE_EVENT = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# Any of these proves SendGrid accepted the message: an `unknown` (ambiguous) send settles as sent.
SETTLES_UNKNOWN = frozenset({"processed", "delivered", "deferred", "bounce", "dropped", "open", "click",
                             "spamreport", "unsubscribe", "group_unsubscribe"})
# Where a message's delivery stands; a later event only moves it forward.
DELIVERY_RANK = {"": 0, "processed": 1, "deferred": 2, "delivered": 3, "blocked": 4, "bounced": 5, "dropped": 5}
# Fallback to "the address's latest message" only for events that may lack sg_message_id.
ADDRESS_FALLBACK_EVENTS = frozenset({"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"})
# Order of engine events with equal timestamps.
ENGINE_ORDER = {"sent": 0, "delivered": 1, "open": 2, "click": 3}

_MAX_EPOCH = 32503680000  # year 3000: anything beyond is not a real event time
# Kept in columns, or our own custom args echoed back: not repeated in MessageEvent.raw (the
# complete original stays in the webhook delivery's body). Halves the bytes of the hot insert.
_RAW_SKIP = frozenset({"email", "timestamp", "event", "sg_event_id", "smtp-id", "category", "url", "reason",
                       "tenant_id", "campaign_id", "contact_campaign_id", "node_id", "outbound_message_id"})


# --------------------------------------------------------------------------------------------
# Validation and raw storage (the endpoint)
# --------------------------------------------------------------------------------------------

_STRING_FIELDS = ("sg_event_id", "sg_message_id", "url", "reason", "useragent")


def _timestamp_ok(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        if not value.isdigit():
            return False
        value = int(value)
    elif kind is not int and kind is not float:  # bool is not a timestamp
        return False
    return 0 < value < _MAX_EPOCH


def event_batch_problem(events: Any) -> str | None:
    """Why a parsed body is not a SendGrid event batch, or None. Checked before anything is stored.

    Runs on every POST (1,000 events each), hence exact type checks rather than isinstance chains.
    """
    if type(events) is not list:
        return "body must be a JSON array of event objects"
    for index, event in enumerate(events):
        if type(event) is not dict:
            return f"event {index} is not an object"
        kind = event.get("event")
        if type(kind) is not str or not kind:
            return f"event {index}: missing 'event'"
        if not _timestamp_ok(event.get("timestamp")):
            return f"event {index}: 'timestamp' must be epoch seconds"
        email = event.get("email")
        if (type(email) is not str or not email) and kind != "account_status_change":
            return f"event {index}: missing 'email'"
        for key in _STRING_FIELDS:
            value = event.get(key)
            if value is not None and type(value) is not str:
                return f"event {index}: '{key}' must be a string"
    return None


@contextmanager
def binary_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor with server-side binding on Django's connection (same transaction).

    Django's default cursor binds client-side: every element of a 1,000-item array parameter, and
    every byte of a 400 KB body, is quoted into the SQL text in Python. Server-side binding with
    binary parameters (``%b``) skips that, which more than halves the cost of the bulk statements.
    """
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    try:
        yield cursor
    finally:
        cursor.close()


def _enqueue(delivery_ids: list[int]) -> None:
    from outreach.celery import app

    try:
        app.send_task(PROCESS_TASK, args=[delivery_ids])
    except Exception:  # noqa: BLE001 - the row is stored; the retry sweep picks it up
        logger.exception("could not enqueue %s for %s; the sweep will process them", PROCESS_TASK, delivery_ids)


def webhook_delivery_store(
    *, kind: str, body: bytes, headers: dict, signature_valid: bool | None, event_count: int
) -> int | None:
    """Store a raw POST once (payload_hash unique). Returns its id, or None for a byte-identical repeat.

    Processing is enqueued after commit, so a worker never sees a row that was rolled back.
    """
    payload_hash = hashlib.sha256(body).hexdigest()
    with binary_cursor() as cursor:
        cursor.execute(
            "INSERT INTO webhook_deliveries (kind, body, headers, payload_hash, signature_valid, status, "
            "event_count, error, attempts, received_at) VALUES (%s, %b, %s::jsonb, %s, %s, 'pending', %s, '', 0, "
            "%s) ON CONFLICT (payload_hash) DO NOTHING RETURNING id",
            [kind, body, orjson.dumps(headers).decode(), payload_hash, signature_valid, event_count, clock.now()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    delivery_id = int(row[0])
    transaction.on_commit(lambda: _enqueue([delivery_id]))
    return delivery_id


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

@dataclass(slots=True)
class NormalisedEvent:
    event_type: str
    email: str
    timestamp: float
    occurred_at: dt.datetime
    provider_event_id: str
    message_prefix: str
    custom_message_id: int | None
    custom_tenant_id: int | None
    url: str
    reason: str
    bounce_type: str
    is_machine: bool
    useragent: str
    dedupe_key: str
    raw_json: str
    delivery_id: int
    message: dict | None = None
    tenant_id: int | None = None
    extra: dict = field(default_factory=dict)
    # Unlinked event whose address several tenants mailed recently (no tenant could be told), or, for an
    # address-level action, that no tenant mailed within the window: the tenants that address-level
    # policy (hard bounce, opt-out) applies to. See _apply_compliance.
    address_tenant_ids: tuple[int, ...] = ()


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def normalise_event(event: dict, *, delivery_id: int) -> NormalisedEvent:
    kind = str(event.get("event") or "")
    email = str(event.get("email") or "").strip().lower()
    timestamp = float(event["timestamp"])
    sg_message_id = str(event.get("sg_message_id") or "")
    prefix = sg_message_id.split(".", 1)[0] if sg_message_id else ""
    custom_message_id = _int_or_none(event.get("outbound_message_id"))
    url = str(event.get("url") or "")
    reason = str(event.get("reason") or event.get("response") or "")
    bounce_type = ""
    if kind == "bounce":
        bounce_type = "soft" if str(event.get("type") or "").lower() == "blocked" else "hard"
    useragent = str(event.get("useragent") or "")
    is_machine = kind in ("open", "click") and (
        _truthy(event.get("sg_machine_open")) or bool(useragent and SCANNER_USER_AGENT.search(useragent))
    )
    # Content key: stable across retries even when SendGrid hands the event a new sg_event_id.
    message_ref = prefix or (f"om:{custom_message_id}" if custom_message_id else "")
    detail = url or reason
    if kind == "deferred":
        detail = f"{detail}|{event.get('attempt', '')}"
    content = f"sendgrid|{message_ref}|{email}|{kind}|{timestamp:.3f}|{detail}"
    return NormalisedEvent(
        event_type=kind[:32],
        email=email[:254],
        timestamp=timestamp,
        occurred_at=dt.datetime.fromtimestamp(timestamp, dt.UTC),
        provider_event_id=str(event.get("sg_event_id") or "")[:128],
        message_prefix=prefix[:128],
        custom_message_id=custom_message_id,
        custom_tenant_id=_int_or_none(event.get("tenant_id")),
        url=url,
        reason=reason,
        bounce_type=bounce_type,
        is_machine=is_machine,
        useragent=useragent,
        dedupe_key=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        raw_json=orjson.dumps({k: v for k, v in event.items() if k not in _RAW_SKIP}).decode("utf-8"),
        delivery_id=delivery_id,
    )


# --------------------------------------------------------------------------------------------
# Linking events to outbound messages
# --------------------------------------------------------------------------------------------

_MESSAGE_FIELDS = ("id", "tenant_id", "contact_campaign_id", "node_id", "node_visit", "status", "to_address",
                   "sent_at", "provider_message_id")


def _link_messages(events: list[NormalisedEvent]) -> None:
    """custom_args outbound_message_id, else the sg_message_id prefix, else (async bounces) the
    address's latest sent message: in the tenant the custom args name, when they do; without a
    tenant, only when exactly one tenant mailed the address recently (else the event stays unlinked)."""
    by_id: dict[int, dict] = {}
    ids = {e.custom_message_id for e in events if e.custom_message_id}
    if ids:
        for row in OutboundMessage.objects.filter(id__in=ids).values(*_MESSAGE_FIELDS):
            by_id[row["id"]] = row
    by_prefix: dict[str, dict] = {}
    prefixes = {e.message_prefix for e in events
                if e.message_prefix and not (e.custom_message_id and e.custom_message_id in by_id)}
    if prefixes:
        for row in OutboundMessage.objects.filter(provider_message_id__in=prefixes).values(*_MESSAGE_FIELDS):
            by_prefix[row["provider_message_id"]] = row
    unmatched = []
    for event in events:
        message = by_id.get(event.custom_message_id) if event.custom_message_id else None
        if message is None and event.message_prefix:
            message = by_prefix.get(event.message_prefix)
        event.message = message
        if message is None and event.email and event.event_type in ADDRESS_FALLBACK_EVENTS:
            unmatched.append(event)
    if unmatched:
        latest, ambiguous = _latest_messages_by_address({(e.custom_tenant_id, e.email) for e in unmatched})
        for event in unmatched:
            event.message = latest.get((event.custom_tenant_id, event.email))
            if event.message is None and not event.custom_tenant_id:
                event.address_tenant_ids = ambiguous.get(event.email, ())
        _address_tenants_beyond_window(unmatched)
    tenant_hints = {e.custom_tenant_id for e in events if e.message is None and e.custom_tenant_id}
    known_tenants: set[int] = set()
    if tenant_hints:
        from outreach.tenancy.models import Tenant

        known_tenants = set(Tenant.objects.filter(id__in=tenant_hints).values_list("id", flat=True))
    for event in events:
        if event.message is not None:
            event.tenant_id = event.message["tenant_id"]
        elif event.custom_tenant_id in known_tenants:
            event.tenant_id = event.custom_tenant_id


_SENT_STATUSES = ("sent", "unknown")


def _latest_messages_by_address(
    keys: set[tuple[int | None, str]],
) -> tuple[dict[tuple[int | None, str], dict], dict[str, tuple[int, ...]]]:
    """The latest sent message for each (tenant hint, address), two queries at most.

    With a tenant (from the custom args): that tenant's latest message to the address. Without one,
    the address alone cannot say whose mail bounced: the latest message is taken only when exactly
    one tenant mailed the address in the last ADDRESS_FALLBACK_DAYS; when several did, the event stays
    unlinked (never given to one tenant's engine or history by a guess) and those tenants are returned
    as the second value, for address-level policy.
    """
    found: dict[tuple[int | None, str], dict] = {}
    ambiguous: dict[str, tuple[int, ...]] = {}
    scoped = {(tenant_id, email) for tenant_id, email in keys if tenant_id}
    if scoped:
        rows = (OutboundMessage.objects
                .filter(to_address__in={e for _, e in scoped}, tenant_id__in={t for t, _ in scoped},
                        status__in=_SENT_STATUSES)
                .order_by("to_address", "tenant_id", "-created_at").distinct("to_address", "tenant_id")
                .values(*_MESSAGE_FIELDS))
        for row in rows:
            key = (row["tenant_id"], row["to_address"])
            if key in scoped:
                found[key] = row
    blind = {email for tenant_id, email in keys if not tenant_id}
    if blind:
        from django.db.models import Q

        days = getattr(settings, "SENDGRID_ADDRESS_FALLBACK_DAYS", ADDRESS_FALLBACK_DAYS)
        since = clock.now() - dt.timedelta(days=days)
        by_address: dict[str, list[dict]] = {}
        for row in (OutboundMessage.objects
                    .filter(Q(sent_at__gte=since) | Q(created_at__gte=since), to_address__in=blind,
                            status__in=_SENT_STATUSES)
                    .order_by("to_address", "tenant_id", "-created_at").distinct("to_address", "tenant_id")
                    .values(*_MESSAGE_FIELDS)):
            by_address.setdefault(row["to_address"], []).append(row)
        for email, rows in by_address.items():
            if len(rows) == 1:
                found[(None, email)] = rows[0]
            else:
                ambiguous[email] = tuple(sorted(row["tenant_id"] for row in rows))
    return found, ambiguous


def _address_tenants_beyond_window(unmatched: list[NormalisedEvent]) -> None:
    """Tenant-less address-level events (hard bounce, invalid, spam report, opt-out) that no tenant's
    mail within the fallback window explains: every tenant that ever mailed the address.

    The window keeps a stale message from being credited with the event (engine, history), but an
    opt-out or complaint for an address mailed 31 days ago is just as binding: without this it would
    record nothing and the address would stay mailable. One DISTINCT query for the whole batch; the
    event itself stays unlinked (tenant_id None).
    """
    orphans = [e for e in unmatched
               if e.message is None and not e.custom_tenant_id and not e.address_tenant_ids
               and _compliance_action(e) in _ADDRESS_LEVEL_ACTIONS]
    if not orphans:
        return
    tenants_by_address: dict[str, list[int]] = {}
    for email, tenant_id in (OutboundMessage.objects
                             .filter(to_address__in={e.email for e in orphans}, status__in=_SENT_STATUSES)
                             .order_by().values_list("to_address", "tenant_id").distinct()):
        tenants_by_address.setdefault(email, []).append(tenant_id)
    for event in orphans:
        event.address_tenant_ids = tuple(sorted(tenants_by_address.get(event.email, ())))


def _mark_scanner_clicks(events: list[NormalisedEvent]) -> None:
    """A click within seconds of delivery is a security gateway's link scanner, not a person."""
    clicks = [e for e in events if e.event_type == "click" and not e.is_machine and e.message is not None]
    if not clicks:
        return
    message_ids = {e.message["id"] for e in clicks}
    delivered_at: dict[int, float] = {}
    for event in events:
        if event.event_type == "delivered" and event.message is not None and event.message["id"] in message_ids:
            mid = event.message["id"]
            delivered_at[mid] = min(delivered_at.get(mid, event.timestamp), event.timestamp)
    from messaging.models import MessageEvent

    for mid, occurred in MessageEvent.objects.filter(
        outbound_message_id__in=message_ids, event_type="delivered"
    ).values_list("outbound_message_id", "occurred_at"):
        delivered_at[mid] = min(delivered_at.get(mid, occurred.timestamp()), occurred.timestamp())
    window = getattr(settings, "SENDGRID_SCANNER_CLICK_WINDOW_SECONDS", SCANNER_CLICK_WINDOW_SECONDS)
    for event in clicks:
        mid = event.message["id"]
        reference = delivered_at.get(mid)
        if reference is None and event.message.get("sent_at") is not None:
            reference = event.message["sent_at"].timestamp()
        if reference is not None and event.timestamp - reference <= window:
            event.is_machine = True


# --------------------------------------------------------------------------------------------
# The batch: insert, statuses, engine, compliance
# --------------------------------------------------------------------------------------------

_INSERT_EVENTS_SQL = """
INSERT INTO message_events (tenant_id, outbound_message_id, webhook_delivery_id, provider, event_type,
    provider_event_id, dedupe_key, email, url, is_machine, bounce_type, reason, occurred_at, raw, created_at)
SELECT t, m, w, 'sendgrid', et, pe, dk, em, u, im, bt, rs, oa, r::jsonb, %b
FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[],
            %b::text[], %b::bool[], %b::text[], %b::text[], %b::timestamptz[], %b::text[])
     AS x(t, m, w, et, pe, dk, em, u, im, bt, rs, oa, r)
ON CONFLICT DO NOTHING
RETURNING dedupe_key
"""


def _insert_events(events: list[NormalisedEvent]) -> set[str]:
    """Deduplicating bulk insert; returns the dedupe keys of the rows that were new."""
    new_keys: set[str] = set()
    now = clock.now()
    with binary_cursor() as cursor:
        for start in range(0, len(events), INSERT_CHUNK):
            chunk = events[start:start + INSERT_CHUNK]
            cursor.execute(_INSERT_EVENTS_SQL, [
                now,
                [e.tenant_id for e in chunk],
                [e.message["id"] if e.message else None for e in chunk],
                [e.delivery_id for e in chunk],
                [e.event_type for e in chunk],
                [e.provider_event_id for e in chunk],
                [e.dedupe_key for e in chunk],
                [e.email for e in chunk],
                [e.url for e in chunk],
                [e.is_machine for e in chunk],
                [e.bounce_type for e in chunk],
                [e.reason for e in chunk],
                [e.occurred_at for e in chunk],
                [e.raw_json for e in chunk],
            ])
            new_keys.update(row[0] for row in cursor.fetchall())
    return new_keys


def _delivery_status_of(event: NormalisedEvent) -> str:
    if event.event_type == "bounce":
        return "bounced" if event.bounce_type == "hard" else "blocked"
    if event.event_type in ("processed", "deferred", "delivered", "dropped"):
        return event.event_type
    return ""


_UPDATE_DELIVERY_STATUS_SQL = """
UPDATE outbound_messages AS m SET delivery_status = x.st, updated_at = %b
FROM unnest(%b::bigint[], %b::text[], %b::int[]) AS x(id, st, rk)
WHERE m.id = x.id AND (CASE m.delivery_status WHEN 'processed' THEN 1 WHEN 'deferred' THEN 2
    WHEN 'delivered' THEN 3 WHEN 'blocked' THEN 4 WHEN 'bounced' THEN 5 WHEN 'dropped' THEN 5 ELSE 0 END) < x.rk
"""


def _update_delivery_statuses(new_events: list[NormalisedEvent]) -> None:
    best: dict[int, str] = {}
    for event in new_events:
        status = _delivery_status_of(event)
        if not status or event.message is None:
            continue
        mid = event.message["id"]
        if DELIVERY_RANK[status] > DELIVERY_RANK.get(best.get(mid, ""), 0):
            best[mid] = status
    if not best:
        return
    ids = list(best)
    with binary_cursor() as cursor:
        cursor.execute(_UPDATE_DELIVERY_STATUS_SQL,
                       [clock.now(), ids, [best[i] for i in ids], [DELIVERY_RANK[best[i]] for i in ids]])


def _settle_unknown(new_events: list[NormalisedEvent]) -> dict[int, NormalisedEvent]:
    """An ambiguous send that SendGrid reports on was accepted: settle it as sent, exactly once
    (the conditional UPDATE returns a row only to the transaction that moved it)."""
    first: dict[int, NormalisedEvent] = {}
    for event in new_events:
        if (event.event_type in SETTLES_UNKNOWN and event.message is not None
                and event.message["status"] == OutboundMessage.Status.UNKNOWN):
            mid = event.message["id"]
            if mid not in first or event.timestamp < first[mid].timestamp:
                first[mid] = event
    if not first:
        return {}
    ids = list(first)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages AS m SET status = 'sent', sent_at = COALESCE(m.sent_at, x.at), "
            "provider_message_id = COALESCE(m.provider_message_id, NULLIF(x.prefix, '')), "
            "status_reason = 'settled by a provider event', updated_at = %s "
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS x(id, at, prefix) "
            "WHERE m.id = x.id AND m.status = 'unknown' RETURNING m.id",
            [clock.now(), ids, [first[i].occurred_at for i in ids], [first[i].message_prefix for i in ids]],
        )
        settled = {row[0] for row in cursor.fetchall()}
    for event in new_events:
        if event.message is not None and event.message["id"] in settled:
            event.message["status"] = OutboundMessage.Status.SENT
    return {mid: first[mid] for mid in settled}


def _engine_items(new_events: list[NormalisedEvent], settled: dict[int, NormalisedEvent]) -> list[tuple]:
    from campaigns.engine import EngineEvent

    keyed: list[tuple[float, int, int, Any]] = []
    for mid, event in settled.items():
        message = event.message
        if message and message["contact_campaign_id"]:
            keyed.append((event.timestamp, ENGINE_ORDER["sent"], mid, (message["contact_campaign_id"], EngineEvent(
                type="sent", occurred_at=event.occurred_at, node_id=message["node_id"] or None,
                node_visit=message["node_visit"], outbound_message_id=mid, detail={"settled_by": event.event_type},
            ))))
    for event in new_events:
        engine_type = ENGINE_EVENT.get(event.event_type)
        message = event.message
        if engine_type is None or message is None or not message["contact_campaign_id"]:
            continue
        detail: dict[str, Any] = {}
        if engine_type == "bounce":
            detail = {"bounce_type": event.bounce_type, "reason": event.reason[:300]}
        elif engine_type == "dropped":
            detail = {"reason": event.reason[:300]}
        elif engine_type == "click":
            detail = {"url": event.url[:500]}
        keyed.append((event.timestamp, ENGINE_ORDER.get(engine_type, 9), message["id"], (
            message["contact_campaign_id"],
            EngineEvent(type=engine_type, occurred_at=event.occurred_at, node_id=message["node_id"] or None,
                        node_visit=message["node_visit"], outbound_message_id=message["id"],
                        is_machine=event.is_machine, detail=detail),
        )))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


# Policy that follows from an event about the address alone, applied in every tenant that recently
# mailed it (or, when none did within the window, that ever mailed it) when the event could not be
# tied to one tenant: a hard bounce or an invalid address is a
# fact about the mailbox, and an opt-out or a spam complaint must never be lost (the SendGrid account,
# and so its sending reputation, is shared by all tenants).
_ADDRESS_LEVEL_ACTIONS = frozenset({"hard_bounce", "invalid", "spam_report", "unsubscribe"})


def _compliance_action(event: NormalisedEvent) -> str | None:
    if event.event_type == "bounce":
        return "hard_bounce" if event.bounce_type == "hard" else None
    if event.event_type == "spamreport":
        return "spam_report"
    if event.event_type in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribe"
    if event.event_type == "dropped":
        reason = event.reason.lower()
        if "unsubscribed" in reason:
            return "unsubscribe"
        if "spam reporting" in reason:
            return "spam_report"
        if "bounced address" in reason:
            return "hard_bounce"
        if reason.startswith("invalid"):
            return "invalid"
    return None


def _apply_compliance(new_events: list[NormalisedEvent]) -> None:
    """Hard bounces and spam reports suppress, unsubscribes opt out, at once; repeated soft bounces
    suppress for a while. Once per (tenant, address, action) per batch.

    The endpoint accepts any non-empty ``email`` string, but compliance keys are normalised addresses
    and refuse what Django's validator refuses. Those addresses are sorted out here, in one pass before
    any write, and their policy action is skipped with a warning: raising would roll back the whole
    batch, every retry would fail the same way, and every event of it would be lost. (One check per
    distinct address that needs an action, rather than a savepoint per action on the hot path.)
    """
    from messaging import compliance

    actions: dict[tuple[int, str, str], NormalisedEvent] = {}
    soft: dict[tuple[int, str], NormalisedEvent] = {}
    valid: dict[str, bool] = {}
    for event in new_events:
        if not event.email or (event.tenant_id is None and not event.address_tenant_ids):
            continue
        action = _compliance_action(event)
        is_soft = event.event_type == "bounce" and event.bounce_type != "hard" and event.tenant_id is not None
        if action is None and not is_soft:
            continue
        ok = valid.get(event.email)
        if ok is None:
            try:
                compliance.normalise_email(event.email)  # event.email is already stripped and lower-cased
                ok = True
            except compliance.InvalidAddress:
                ok = False
            valid[event.email] = ok
            if not ok:
                logger.warning("webhook %s event %s for %r: not a valid address, %s skipped (event stored)",
                               event.event_type, event.provider_event_id or event.dedupe_key[:16], event.email,
                               action or "soft-bounce count")
        if not ok:
            continue
        if is_soft:
            soft[(event.tenant_id, event.email)] = event
        elif event.tenant_id is not None:
            actions.setdefault((event.tenant_id, event.email, action), event)
        elif action in _ADDRESS_LEVEL_ACTIONS:
            for tenant_id in event.address_tenant_ids:
                actions.setdefault((tenant_id, event.email, action), event)
    if not actions and not soft:
        return
    from outreach.tenancy.models import Tenant

    tenant_ids = {key[0] for key in actions} | {key[0] for key in soft}
    tenants = Tenant.objects.in_bulk(tenant_ids)
    for (tenant_id, email, action), event in actions.items():
        tenant = tenants[tenant_id]
        if action == "unsubscribe":
            compliance.unsubscribe_record(tenant=tenant, channel="email", value=email, source="sendgrid_webhook",
                                          detail=f"{event.event_type} event {event.provider_event_id}".strip())
        else:
            compliance.suppression_add(tenant=tenant, channel="email", value=email, reason=action,
                                       detail=(event.reason or event.event_type)[:500])
    if soft:
        _suppress_repeated_soft_bounces(soft, tenants)


def _suppress_repeated_soft_bounces(soft: dict[tuple[int, str], NormalisedEvent], tenants: dict) -> None:
    from django.db.models import Count

    from messaging import compliance
    from messaging.models import MessageEvent

    since = clock.now() - SOFT_BOUNCE_WINDOW
    emails = {email for _, email in soft}
    counts = {
        (row["tenant_id"], row["email"]): row["n"]
        for row in MessageEvent.objects.filter(
            event_type="bounce", bounce_type="soft", email__in=emails, tenant_id__in={t for t, _ in soft},
            occurred_at__gte=since,
        ).values("tenant_id", "email").annotate(n=Count("id"))
    }
    threshold = getattr(settings, "SENDGRID_SOFT_BOUNCE_THRESHOLD", SOFT_BOUNCE_THRESHOLD)
    for (tenant_id, email), event in soft.items():
        if counts.get((tenant_id, email), 0) >= threshold:
            compliance.suppression_add(
                tenant=tenants[tenant_id], channel="email", value=email, reason="soft_bounce",
                detail=f"{counts[(tenant_id, email)]} soft bounces in {SOFT_BOUNCE_WINDOW.days} days: "
                       f"{event.reason}"[:500],
                expires_at=clock.now() + SOFT_BOUNCE_SUPPRESSION,
            )


@dataclass
class IngestStats:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    unmatched: int = 0
    engine_events: int = 0
    settled: int = 0


def events_ingest(*, events: list[NormalisedEvent]) -> IngestStats:
    """Normalised events -> message_events, statuses, engine, compliance. Call inside a transaction."""
    stats = IngestStats(received=len(events))
    seen_keys: set[str] = set()
    seen_ids: set[str] = set()
    unique: list[NormalisedEvent] = []
    for event in events:
        if event.dedupe_key in seen_keys or (event.provider_event_id and event.provider_event_id in seen_ids):
            continue
        seen_keys.add(event.dedupe_key)
        if event.provider_event_id:
            seen_ids.add(event.provider_event_id)
        unique.append(event)
    _link_messages(unique)
    _mark_scanner_clicks(unique)
    new_keys = _insert_events(unique)
    new_events = [e for e in unique if e.dedupe_key in new_keys]
    stats.new = len(new_events)
    stats.duplicates = len(events) - len(new_events)
    stats.unmatched = sum(1 for e in new_events if e.message is None)
    if not new_events:
        return stats
    settled = _settle_unknown(new_events)
    stats.settled = len(settled)
    _update_delivery_statuses(new_events)
    items = _engine_items(new_events, settled)
    if items:
        from campaigns.services import contact_campaigns_handle_events

        contact_campaigns_handle_events(items=items)
    stats.engine_events = len(items)
    _apply_compliance(new_events)
    return stats


# --------------------------------------------------------------------------------------------
# Deliveries: lock, process, mark; retries
# --------------------------------------------------------------------------------------------

@dataclass
class ProcessReport:
    processed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    events: IngestStats = field(default_factory=IngestStats)


def _add_stats(total: IngestStats, part: IngestStats) -> None:
    for name in ("received", "new", "duplicates", "unmatched", "engine_events", "settled"):
        setattr(total, name, getattr(total, name) + getattr(part, name))


def _process_event_deliveries(delivery_ids: list[int], *, absorb_pending: int = 0) -> tuple[list[int], IngestStats]:
    with transaction.atomic():
        with connection.cursor() as cursor:
            # SKIP LOCKED: a delivery another worker is processing right now is its business.
            cursor.execute(
                "SELECT id, body FROM webhook_deliveries WHERE id = ANY(%s) AND kind = %s "
                "AND status IN ('pending', 'failed') ORDER BY id FOR UPDATE SKIP LOCKED",
                [delivery_ids, WebhookDelivery.Kind.SENDGRID_EVENTS],
            )
            rows = cursor.fetchall()
            if absorb_pending:
                # Under load, fold other waiting deliveries into this transaction: one commit and one
                # engine pass for several POSTs. Their own tasks then find nothing left to do.
                cursor.execute(
                    "SELECT id, body FROM webhook_deliveries WHERE status = 'pending' AND kind = %s "
                    "AND NOT (id = ANY(%s)) ORDER BY received_at LIMIT %s FOR UPDATE SKIP LOCKED",
                    [WebhookDelivery.Kind.SENDGRID_EVENTS, delivery_ids, absorb_pending],
                )
                rows += cursor.fetchall()
        if not rows:
            return [], IngestStats()
        events: list[NormalisedEvent] = []
        for delivery_id, body in rows:
            for raw in orjson.loads(bytes(body)):
                events.append(normalise_event(raw, delivery_id=delivery_id))
        stats = events_ingest(events=events)
        locked = sorted(row[0] for row in rows)
        WebhookDelivery.objects.filter(id__in=locked).update(
            status=WebhookDelivery.Status.PROCESSED, processed_at=clock.now(), error="",
        )
    return locked, stats


def _mark_failed(delivery_id: int, error: BaseException) -> None:
    from django.db.models import F

    WebhookDelivery.objects.filter(id=delivery_id).exclude(status=WebhookDelivery.Status.PROCESSED).update(
        status=WebhookDelivery.Status.FAILED, attempts=F("attempts") + 1,
        error=f"{type(error).__name__}: {error}"[:4000],
    )


def webhook_deliveries_process(*, delivery_ids: list[int], absorb_pending: int = 0) -> ProcessReport:
    """Process stored deliveries (both kinds). Event batches go through one transaction (plus up to
    ``absorb_pending`` other waiting event deliveries); if that fails, each requested delivery is
    retried alone so one poison batch cannot hold back the others, and a failing one is left
    `failed` with its error for the retry sweep."""
    report = ProcessReport()
    ids = sorted({int(i) for i in delivery_ids})
    kinds = dict(
        WebhookDelivery.objects.filter(id__in=ids, status__in=["pending", "failed"]).values_list("id", "kind")
    )
    event_ids = [i for i in ids if kinds.get(i) == WebhookDelivery.Kind.SENDGRID_EVENTS]
    inbound_ids = [i for i in ids if kinds.get(i) == WebhookDelivery.Kind.SENDGRID_INBOUND]
    if event_ids:
        try:
            done, stats = _process_event_deliveries(event_ids, absorb_pending=absorb_pending)
            report.processed.extend(done)
            _add_stats(report.events, stats)
        except Exception as exc:  # noqa: BLE001 - isolate the failing delivery below
            if len(event_ids) == 1 and not absorb_pending:
                logger.exception("webhook delivery %s failed", event_ids[0])
                _mark_failed(event_ids[0], exc)
                report.failed.append(event_ids[0])
            else:
                for delivery_id in event_ids:
                    try:
                        done, stats = _process_event_deliveries([delivery_id])
                        report.processed.extend(done)
                        _add_stats(report.events, stats)
                    except Exception as single_exc:  # noqa: BLE001
                        logger.exception("webhook delivery %s failed", delivery_id)
                        _mark_failed(delivery_id, single_exc)
                        report.failed.append(delivery_id)
    if inbound_ids:
        from messaging.inbound import inbound_delivery_process

        for delivery_id in inbound_ids:
            try:
                if inbound_delivery_process(delivery_id=delivery_id):
                    report.processed.append(delivery_id)
            except Exception as exc:  # noqa: BLE001
                logger.exception("inbound delivery %s failed", delivery_id)
                _mark_failed(delivery_id, exc)
                report.failed.append(delivery_id)
    return report


def webhook_deliveries_due_for_retry(*, limit: int = 200) -> list[int]:
    """Pending rows whose task never ran (lost enqueue) and failed rows whose back-off has passed
    (1, 2, 4 ... minutes after receipt), up to MAX_PROCESS_ATTEMPTS; past that an operator looks."""
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "(SELECT id FROM webhook_deliveries WHERE status = 'pending' AND received_at < %s "
            " ORDER BY received_at LIMIT %s) UNION ALL "
            "(SELECT id FROM webhook_deliveries WHERE status = 'failed' AND attempts < %s "
            " AND received_at + make_interval(mins => power(2, LEAST(attempts, 12))::int) < %s "
            " ORDER BY received_at LIMIT %s)",
            [now - PENDING_GRACE, limit, MAX_PROCESS_ATTEMPTS, now, limit],
        )
        return [row[0] for row in cursor.fetchall()]
