"""Reads behind the campaigns API: enrolment timelines and per-campaign metrics.

Both run a fixed number of queries whatever the number of rows: timelines load each kind of history
for a whole page of contact campaigns at once, metrics aggregate in SQL.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.models import Count, F, QuerySet

from campaigns.models import Campaign, CampaignTransition, ContactCampaign
from messaging.interface import InboundMessage, MessageEvent, OutboundMessage
from outreach.db_router import replica_reads
from outreach.tenancy.models import Tenant

# At the same instant, causes first: an event or reply moves the plan, and the move queues a message.
_KIND_ORDER = {"event": 0, "reply": 1, "bounce_notice": 1, "transition": 2, "message": 3}
REPLY_SNIPPET_CHARS = 500


def contact_campaign_list(*, tenant: Tenant, status: str | None = None, campaign_id: int | None = None,
                          contact_id: int | None = None) -> QuerySet[ContactCampaign]:
    queryset = ContactCampaign.objects.filter(tenant=tenant).select_related("campaign", "current_plan_version")
    if status:
        queryset = queryset.filter(status=status)
    if campaign_id is not None:
        queryset = queryset.filter(campaign_id=campaign_id)
    if contact_id is not None:
        queryset = queryset.filter(contact_id=contact_id)
    return queryset


def campaign_list(*, tenant: Tenant, status: str | None = None, q: str | None = None) -> QuerySet[Campaign]:
    queryset = Campaign.objects.filter(tenant=tenant)
    if status:
        queryset = queryset.filter(status=status)
    if q:
        queryset = queryset.filter(name__icontains=q)
    return queryset


SUMMARY_CHARS = 200


def _item(at: dt.datetime, kind: str, node_id: str, event: str, summary: str, data: dict[str, Any],
          sort_id: int, *, received_at: dt.datetime | None = None, after_send: dt.datetime | None = None
          ) -> dict[str, Any]:
    """`at` is when it happened; `received_at` when we learnt it (provider events, replies); long summaries
    are cut (the full values stay in `data`)."""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS - 1] + "…"
    return {"at": at, "received_at": received_at, "kind": kind, "node_id": node_id, "event": event,
            "summary": summary, "data": data, "_sort": _sort_key(at, kind, sort_id, after_send)}


def _sort_key(at: dt.datetime, kind: str, sort_id: int, after_send: dt.datetime | None) -> tuple:
    # A provider's clock (whole seconds) can stamp "delivered" before our own "sent": such an event sorts
    # right after the send it reports, never before it (its own time is still shown).
    if after_send is not None and at <= after_send:
        return (after_send, len(_KIND_ORDER), sort_id)
    return (at, _KIND_ORDER[kind], sort_id)


def contact_campaign_timelines(*, contact_campaign_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Transitions, messages, provider events and replies of each contact campaign, merged by time.

    Four queries for any number of contact campaigns (none when there are none).
    """
    ids = list(contact_campaign_ids)
    timelines: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    if not ids:
        return timelines

    for t in CampaignTransition.objects.filter(contact_campaign_id__in=ids).order_by("occurred_at", "id"):
        summary = f"{t.from_node_id or 'start'} -[{t.event}]-> {t.to_node_id or '-'}"
        if t.to_status and t.to_status != t.from_status:
            summary += f" ({t.from_status or 'new'} -> {t.to_status})"
        timelines[t.contact_campaign_id].append(_item(
            t.occurred_at, "transition", t.to_node_id, t.event, summary,
            {"from_node_id": t.from_node_id, "to_node_id": t.to_node_id, "node_visit": t.node_visit,
             "from_status": t.from_status, "to_status": t.to_status, "reason": t.reason, "detail": t.detail},
            t.pk,
        ))

    messages = list(
        OutboundMessage.objects.filter(contact_campaign_id__in=ids)
        .only("id", "contact_campaign_id", "node_id", "node_visit", "status", "status_reason", "delivery_status",
              "to_address", "subject", "created_at", "sent_at")
        .order_by("created_at", "id")
    )
    cc_by_message: dict[int, tuple[int, str]] = {}
    sent_at: dict[int, dt.datetime] = {}
    for m in messages:
        cc_by_message[m.pk] = (m.contact_campaign_id, m.node_id)
        sent_at[m.pk] = m.sent_at or m.created_at
        timelines[m.contact_campaign_id].append(_item(
            m.sent_at or m.created_at, "message", m.node_id, m.status, f"{m.status}: {m.subject}",
            {"message_id": m.pk, "subject": m.subject, "to_address": m.to_address, "status": m.status,
             "status_reason": m.status_reason, "delivery_status": m.delivery_status, "node_visit": m.node_visit,
             "queued_at": m.created_at, "sent_at": m.sent_at},
            m.pk,
        ))
    if not cc_by_message:
        return _sorted(timelines)

    events = (MessageEvent.objects.filter(outbound_message_id__in=list(cc_by_message))
              .only("id", "outbound_message_id", "event_type", "is_machine", "url", "bounce_type", "reason",
                    "occurred_at", "created_at")
              .order_by("occurred_at", "id"))
    for e in events:
        cc_id, node_id = cc_by_message[e.outbound_message_id]
        label = f"{e.event_type} (machine)" if e.is_machine else e.event_type
        timelines[cc_id].append(_item(
            e.occurred_at, "event", node_id, e.event_type, label,
            {"message_id": e.outbound_message_id, "is_machine": e.is_machine, "url": e.url,
             "bounce_type": e.bounce_type, "reason": e.reason},
            e.pk, received_at=e.created_at, after_send=sent_at[e.outbound_message_id],
        ))

    _add_replies(timelines, cc_by_message)
    return _sorted(timelines)


def _add_replies(timelines: dict[int, list[dict[str, Any]]], cc_by_message: dict[int, tuple[int, str]]) -> None:
    """The replies (and bounce notices read from inbound mail) to these messages, into their timelines."""
    replies = (InboundMessage.objects.filter(outbound_message_id__in=list(cc_by_message))
               .annotate(arrived_at=F("webhook_delivery__received_at"))
               .only("id", "outbound_message_id", "from_email", "subject", "text", "is_auto_reply", "classification",
                     "stop_request", "return_date", "received_at", "kind", "bounce_type")
               .order_by("received_at", "id"))
    for r in replies:
        cc_id, node_id = cc_by_message[r.outbound_message_id]
        # A reply happened when its mail reached us (the time the engine moved the plan at), not when it
        # was processed: the processing time is shown apart as received_at.
        # A bounce notice (DSN) read from inbound mail is a bounce, never shown as a person's reply.
        notice = r.kind == InboundMessage.Kind.BOUNCE
        timelines[cc_id].append(_item(
            r.arrived_at or r.received_at, "bounce_notice" if notice else "reply", node_id,
            f"bounce_{r.bounce_type or 'unknown'}" if notice
            else f"reply_{r.classification}" if r.classification else "reply",
            f"{'bounce notice' if notice else 'reply'} from {r.from_email}: {r.subject}",
            {"reply_id": r.pk, "message_id": r.outbound_message_id, "from_email": r.from_email,
             "subject": r.subject, "text": r.text[:REPLY_SNIPPET_CHARS], "is_auto_reply": r.is_auto_reply,
             "classification": r.classification, "stop_request": r.stop_request, "return_date": r.return_date},
            r.pk, received_at=r.received_at,
        ))


def _is_noop(item: dict[str, Any]) -> bool:
    data = item["data"]
    return item["kind"] == "transition" and data["from_node_id"] == data["to_node_id"] \
        and (data["to_status"] or data["from_status"]) == data["from_status"] and data["from_node_id"] != ""


def _sorted(timelines: dict[int, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """Each timeline in occurrence order, with no-op transitions (an event recorded at the node, nothing
    moved) folded into the event or reply before them (`data.noop_transitions`) instead of a row each."""
    for cc_id, items in timelines.items():
        items.sort(key=lambda item: item["_sort"])
        folded: list[dict[str, Any]] = []
        for item in items:
            del item["_sort"]
            cause = folded[-1] if folded and folded[-1]["kind"] in ("event", "reply", "bounce_notice") else None
            if _is_noop(item) and cause is not None:
                cause["data"].setdefault("noop_transitions", []).append(item["event"])
                continue
            folded.append(item)
        timelines[cc_id] = folded
    return timelines


METRIC_NAMES = ("queued", "sent", "delivered", "human_opens", "human_clicks", "replies", "bounces",
                "spam_reports", "unsubscribes")

# One statement: the campaign's messages, a per-message summary of their events and replies, and each
# opt-out attributed to the latest message of this campaign sent to that address before it.
_METRICS_SQL = """
WITH msgs AS (
    SELECT om.id, om.node_id, om.status, om.sent_at, om.to_address, om.channel
    FROM outbound_messages om
    JOIN contact_campaigns cc ON cc.id = om.contact_campaign_id
    WHERE cc.campaign_id = %(campaign_id)s AND om.tenant_id = %(tenant_id)s
),
ev AS (
    SELECT me.outbound_message_id AS id,
           bool_or(me.event_type = 'delivered') AS delivered,
           bool_or(me.event_type = 'open' AND NOT me.is_machine) AS human_open,
           bool_or(me.event_type = 'click' AND NOT me.is_machine) AS human_click,
           bool_or(me.event_type = 'bounce') AS bounced,
           bool_or(me.event_type = 'spamreport') AS spam
    FROM message_events me
    WHERE me.outbound_message_id IN (SELECT id FROM msgs)
    GROUP BY me.outbound_message_id
),
rep AS (
    SELECT DISTINCT im.outbound_message_id AS id
    FROM inbound_messages im
    WHERE im.outbound_message_id IN (SELECT id FROM msgs) AND NOT im.is_auto_reply
      -- Bounce notices never count as replies; held and discarded replies moved no plan (issue 11).
      AND im.kind <> 'bounce' AND im.review_status NOT IN ('held', 'discarded')
),
unsub AS (
    SELECT DISTINCT ON (u.id) u.id, m.node_id
    FROM contact_unsubscribes u
    JOIN msgs m ON m.to_address = u.channel_value AND m.channel = u.channel
                AND m.sent_at IS NOT NULL AND m.sent_at <= u.created_at
    WHERE u.tenant_id = %(tenant_id)s
    ORDER BY u.id, m.sent_at DESC
),
per_node AS (
    SELECT m.node_id,
           count(*) AS queued,
           count(*) FILTER (WHERE m.sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE ev.delivered) AS delivered,
           count(*) FILTER (WHERE ev.human_open) AS human_opens,
           count(*) FILTER (WHERE ev.human_click) AS human_clicks,
           count(rep.id) AS replies,
           count(*) FILTER (WHERE ev.bounced) AS bounces,
           count(*) FILTER (WHERE ev.spam) AS spam_reports
    FROM msgs m
    LEFT JOIN ev ON ev.id = m.id
    LEFT JOIN rep ON rep.id = m.id
    GROUP BY m.node_id
),
unsub_per_node AS (
    SELECT node_id, count(*) AS unsubscribes FROM unsub GROUP BY node_id
)
SELECT p.node_id, p.queued, p.sent, p.delivered, p.human_opens, p.human_clicks, p.replies, p.bounces,
       p.spam_reports, coalesce(u.unsubscribes, 0)
FROM per_node p LEFT JOIN unsub_per_node u ON u.node_id = p.node_id
ORDER BY p.node_id
"""


def campaign_metrics(*, campaign: Campaign) -> dict[str, Any]:
    """Counts per node and in total; each message counts at most once per metric (unique opens etc.).

    Opens and clicks are human only (machine opens and link-scanner clicks excluded); replies exclude
    auto-replies; an unsubscribe counts for the latest message of this campaign sent to the address
    before it. Two queries: the metrics statement and the enrolment status counts.
    """
    # Read-only and allowed to lag a little: on the replica when there is one (outreach/db_router.py).
    with replica_reads() as alias:
        with connections[alias].cursor() as cursor:
            cursor.execute(_METRICS_SQL, {"campaign_id": campaign.pk, "tenant_id": campaign.tenant_id})
            rows = cursor.fetchall()
        statuses = list(ContactCampaign.objects.filter(campaign=campaign).order_by()
                        .values_list("status").annotate(n=Count("id")))
    by_node = []
    totals = dict.fromkeys(METRIC_NAMES, 0)
    for node_id, *values in rows:
        counts = dict(zip(METRIC_NAMES, (int(v) for v in values), strict=True))
        by_node.append({"node_id": node_id, **counts})
        for name, value in counts.items():
            totals[name] += value
    enrolments = defaultdict(int)
    for status, count in statuses:
        enrolments[status] = count
    return {
        "campaign_id": campaign.pk,
        "totals": totals,
        "by_node": by_node,
        "contact_campaigns": {status: enrolments.get(status, 0) for status in ContactCampaign.Status.values},
    }

