"""What is counted, stated once in SQL: from a source of events to "facts" with every dimension resolved.

A source is any SELECT of (tenant_id, message_id, kind, detail, email, occurred_at, n): the pending facts a
rollup pass takes, or a recount of the raw tables (message_events, inbound_messages). Both go through the
same `FACTS_SQL`, so the incremental counts and the recount cannot disagree about what a metric means.
Dimensions come from the outbound message (contact, campaign, node, sender, recipient domain) and from the
plan version the enrolment had when the message was created (the plan source), so a recount made later
resolves the same dimensions as the count made at ingest.
"""
from __future__ import annotations

# SendGrid event (and reply) -> metric. "processed" is SendGrid's acceptance of a message we sent: the
# sent count (every send we make produces exactly one, and it is deduplicated like every event).
METRIC_CASE = """
CASE s.kind
  WHEN 'processed' THEN 'sent'
  WHEN 'delivered' THEN 'delivered'
  WHEN 'deferred' THEN 'deferred'
  WHEN 'bounce' THEN CASE WHEN s.detail = 'soft' THEN 'bounced_soft' ELSE 'bounced_hard' END
  WHEN 'dropped' THEN 'dropped'
  WHEN 'open' THEN CASE WHEN s.detail = 'machine' THEN 'opens_machine' ELSE 'opens_human' END
  WHEN 'click' THEN CASE WHEN s.detail = 'machine' THEN 'clicks_scanner' ELSE 'clicks_human' END
  WHEN 'unsubscribe' THEN 'unsubscribes'
  WHEN 'group_unsubscribe' THEN 'unsubscribes'
  WHEN 'spamreport' THEN 'spam_reports'
  WHEN 'reply' THEN 'replies_' || COALESCE(NULLIF(s.detail, ''), 'unclassified')
  WHEN 'first_open' THEN 'unique_human_opens'
  WHEN 'first_click' THEN 'unique_clickers'
END
"""

# Human opens and clicks also count once per message, at the first one (see rollups.firsts_apply).
FIRST_KIND = {"opens_human": ("open", "unique_human_opens"), "clicks_human": ("click", "unique_clickers")}

FACTS_SQL = f"""
SELECT s.tenant_id, COALESCE(om.contact_id, 0) AS contact_id, COALESCE(cc.campaign_id, 0) AS campaign_id,
       COALESCE(om.node_id, '') AS node_id, COALESCE(pv.source, '') AS plan_source,
       COALESCE(om.sender_identity_id, 0) AS sender_id,
       lower(split_part(COALESCE(om.to_address, s.email), '@', 2)) AS domain,
       date_trunc('hour', s.occurred_at) AS hour,
       (s.occurred_at AT TIME ZONE COALESCE(ts.time_zone, %(default_tz)s))::date AS day,
       {METRIC_CASE} AS metric, s.n, s.message_id, s.occurred_at, COALESCE(ts.time_zone, %(default_tz)s) AS tz
FROM ({{source}}) AS s
LEFT JOIN outbound_messages om ON om.id = s.message_id
LEFT JOIN contact_campaigns cc ON cc.id = om.contact_campaign_id
LEFT JOIN LATERAL (
    SELECT v.source FROM campaign_plan_versions v
    WHERE v.contact_campaign_id = cc.id AND v.created_at <= om.created_at ORDER BY v.version DESC LIMIT 1
) AS pv ON true
LEFT JOIN analytics_tenant_settings ts ON ts.tenant_id = s.tenant_id
"""

FACT_COLUMNS = ("tenant_id", "contact_id", "campaign_id", "node_id", "plan_source", "sender_id", "domain",
                "hour", "day", "metric", "n", "message_id", "occurred_at", "tz")

# Raw events in [lo, hi) as a source; the detail column says what the metric needs (bounce type, machine).
RAW_SOURCE_SQL = """
SELECT e.tenant_id, e.outbound_message_id AS message_id, e.event_type AS kind,
       CASE WHEN e.event_type = 'bounce' THEN e.bounce_type WHEN e.is_machine THEN 'machine' ELSE '' END AS detail,
       e.email, e.occurred_at, 1 AS n
FROM message_events e
WHERE e.tenant_id IS NOT NULL AND e.occurred_at >= %(lo)s AND e.occurred_at < %(hi)s
UNION ALL
SELECT i.tenant_id, i.outbound_message_id, 'reply', i.classification, i.from_email, i.received_at, 1
FROM inbound_messages i
WHERE i.tenant_id IS NOT NULL AND i.kind = 'reply' AND i.received_at >= %(lo)s AND i.received_at < %(hi)s
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (e.outbound_message_id, e.event_type) e.tenant_id, e.outbound_message_id,
           'first_' || e.event_type, '', e.email, e.occurred_at, 1
    FROM message_events e
    WHERE e.event_type IN ('open', 'click') AND NOT e.is_machine AND e.tenant_id IS NOT NULL
      AND e.outbound_message_id IN (
          SELECT m.outbound_message_id FROM message_events m
          WHERE m.event_type IN ('open', 'click') AND NOT m.is_machine
            AND m.occurred_at >= %(lo)s AND m.occurred_at < %(hi)s)
    ORDER BY e.outbound_message_id, e.event_type, e.occurred_at
) AS firsts WHERE firsts.occurred_at >= %(lo)s AND firsts.occurred_at < %(hi)s
"""
