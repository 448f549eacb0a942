"""Send-time policy: may this claimed message go out now? (architecture rule 5, policy beats plans)

Policy is checked twice per claim: once for the whole batch after the claim (`send_policy`, in Python), and
again, in SQL, by the very statement that records the request start (`start_request`), so an opt-out or a
pause that lands while earlier messages of the batch are on the wire still stops the later ones.

The held-send rule ("is this send held?": emergency stop, paused tenant, campaign or contact campaign not
active, sender identity missing, paused or unverified) is campaigns' (campaigns.holds, through
campaigns.interface): `send_hold_reason` in the Python check, `send_allowed_sql` and
`contact_campaign_send_allowed_sql` in the request-start statements. What stays here is messaging's own
part: opt-outs, suppressions, and a message whose node visit is over.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import connection

from campaigns.interface import (
    Campaign,
    ContactCampaign,
    contact_campaign_send_allowed_sql,
    send_allowed_sql,
    send_hold_reason,
    send_time_allowed,
)
from messaging import compliance
from messaging.delivery.rendering import Thread
from messaging.models import EmailSenderIdentity, OutboundMessage
from outreach import clock
from outreach.addresses import normalise_email
from outreach.channels import CHANNEL_EMAIL

# A verdict: None (send), or (action, reason) with action in cancel / suppress / hold.
OUTSIDE_SEND_WINDOW = "outside_send_window"
Verdict = tuple[str, str] | None


def sender_for(message: OutboundMessage) -> EmailSenderIdentity | None:
    if message.sender_identity is not None:
        return message.sender_identity
    cc = message.contact_campaign
    return cc.campaign.sender_identity if cc is not None else None


def batch_block_reasons(messages: list[OutboundMessage]) -> dict[tuple[int, str], str]:
    """Why each (tenant, address) of the batch may not be mailed (opt-outs, suppressions): one query a tenant."""
    blocks: dict[tuple[int, str], str] = {}
    by_tenant: dict[int, list[str]] = {}
    for message in messages:
        by_tenant.setdefault(message.tenant_id, []).append(message.to_address)
    for tenant_id, addresses in by_tenant.items():
        for address, reason in compliance.send_block_reasons(tenant_id=tenant_id, channel=CHANNEL_EMAIL,
                                                             values=addresses).items():
            blocks[(tenant_id, address)] = reason
    return blocks


# --- the batch-start check -----------------------------------------------------------------------------

def _over_reason(message: OutboundMessage) -> str | None:
    """Why the message will never be sent because its contact campaign or campaign is done with it."""
    cc = message.contact_campaign
    campaign = cc.campaign if cc is not None else None
    if cc is not None and cc.status in ContactCampaign.FINAL_STATUSES:
        return f"contact_campaign_{cc.status}"
    if cc is not None and (cc.current_node_id, cc.node_visit) != (message.node_id, message.node_visit):
        # The campaign moved past this message's node visit while it was `sending` (leaving a node cancels
        # only `queued` rows): never sent late (docs/engine.md).
        return "node left before sending"
    if campaign is not None and campaign.status in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED):
        return f"campaign_{campaign.status}"
    return None


def send_policy(*, message: OutboundMessage, global_stop: bool, block_reason: str | None) -> Verdict:
    """What policy says about sending this message now: None (send), or (action, reason) with
    action in cancel / suppress / hold. Policy beats plans (architecture rule 5)."""
    over = _over_reason(message)
    if over:
        return "cancel", over
    if block_reason:
        return "suppress", block_reason
    cc = message.contact_campaign
    held = send_hold_reason(global_stop=global_stop, tenant_sending_paused=message.tenant.sending_paused,
                            campaign_status=cc.campaign.status if cc is not None else None,
                            contact_campaign_status=cc.status if cc is not None else None,
                            sender=sender_for(message))
    if held:
        return "hold", held
    return send_window_verdict(message)


def send_window_verdict(message: OutboundMessage) -> Verdict:
    """None while the plan's quiet hours and send days allow a send now, else a send-window hold.

    The send waited (a backlog, rate limits, a hold) until its moment passed into the contact's quiet hours or
    off its send days: held like a pause and re-timed to the next allowed moment. Checked at batch start and
    again as each request (or wave) starts, since a long batch can run across the window's close."""
    cc = message.contact_campaign
    if cc is not None and not send_time_allowed(plan=cc.plan_json, instant=clock.now()):
        return "hold", OUTSIDE_SEND_WINDOW
    return None


def hold_recheck(reason: str = "") -> dt.timedelta:
    """How much later a held message looks again: at once for a send-window hold (re-arming moves it to the
    window's next opening), else SENDING_HOLD_RECHECK."""
    return dt.timedelta(0) if reason == OUTSIDE_SEND_WINDOW else settings.SENDING_HOLD_RECHECK


# --- the request-start check ---------------------------------------------------------------------------

# The statement that records the request start also re-checks policy, in the same statement so there is no
# gap between check and mark: the batch-start check may be minutes old by the time a message's turn comes
# (up to 500 requests of up to 10 s each), and an opt-out or a pause must win. It is `send_policy`'s "send"
# verdict in SQL. Keys are literals from the batch's read (not correlated to the row), so each sub-select is
# a stand-alone primary or unique key probe that PostgreSQL runs once (an InitPlan) whatever the table
# sizes. Raw SQL: the ORM spelling cost ~2 ms of Python per message.
_START_SET_SQL = """
    UPDATE outbound_messages
    SET message_id_header = %(message_id)s, in_reply_to = %(in_reply_to)s, "references" = %(references)s,
        subject = %(subject)s, sender_identity_id = %(sender_id)s, send_started_at = %(now)s,
        attempts = attempts + 1, updated_at = %(now)s
    WHERE id = %(id)s AND claimed_at = %(claimed_at)s AND status = 'sending'
"""
# The probes that follow the held-send rule (campaigns' send_allowed_sql) in both request-start statements
# (one message, or a wave): opt-outs and suppressions.
_START_PROBES_SQL = """
      AND NOT EXISTS (SELECT 1 FROM contact_unsubscribes
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email' AND channel_value = %(address)s)
      AND NOT EXISTS (SELECT 1 FROM communication_suppressions
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email' AND value = %(address)s
                        AND (expires_at IS NULL OR expires_at > %(now)s))
      AND NOT EXISTS (SELECT 1 FROM communication_suppressions
                      WHERE tenant_id = %(tenant_id)s AND channel = 'email_domain' AND value = %(domain)s
                        AND (expires_at IS NULL OR expires_at > %(now)s))
"""
_START_REQUEST_SQL = _START_SET_SQL + " AND " + send_allowed_sql() + _START_PROBES_SQL

def start_request(message: OutboundMessage, *, claimed_at: dt.datetime, sender: EmailSenderIdentity,
                  message_id: str, thread: Thread, subject: str) -> bool:
    """Record the request start (committed before the request) if the claim is still ours AND policy
    still allows the send; False otherwise (nothing written)."""
    if settings.OUTREACH_SENDING_STOPPED:
        return False
    # The batch-start check suppressed invalid addresses, so this one normalises.
    address = normalise_email(message.to_address)
    sql = _START_REQUEST_SQL
    params: dict[str, Any] = {
        "message_id": message_id, "in_reply_to": thread.in_reply_to[:255], "references": thread.references,
        "subject": subject[:300], "sender_id": sender.id, "now": clock.now(), "id": message.id,
        "claimed_at": claimed_at, "tenant_id": message.tenant_id, "address": address,
        "domain": address.rsplit("@", 1)[1],
    }
    cc = message.contact_campaign
    if cc is not None:
        sql += " AND " + contact_campaign_send_allowed_sql()
        params.update(contact_campaign_id=cc.id, campaign_id=cc.campaign_id, node_id=message.node_id,
                      node_visit=message.node_visit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


# --- the request-start check for a wave (concurrent delivery) ----------------------------------------------

# The same check, the same statement shape, for the k messages of a wave at once (messaging.delivery.window):
# one UPDATE ... FROM unnest(...) RETURNING id, whose per-row probes are the single-message statement's, made
# correlated on the wave's row `v` (one text, so the two cannot drift apart). Only the returned ids may be sent.
_WAVE_COLUMNS = (
    ("id", "bigint"), ("message_id", "text"), ("in_reply_to", "text"), ("references", "text"),
    ("subject", "text"), ("sender_id", "bigint"), ("tenant_id", "bigint"), ("address", "text"),
    ("domain", "text"), ("contact_campaign_id", "bigint"), ("campaign_id", "bigint"), ("node_id", "text"),
    ("node_visit", "integer"),
)


def _correlated(sql: str) -> str:
    for name, _ in _WAVE_COLUMNS:
        sql = sql.replace(f"%({name})s", f'v."{name}"')
    return sql


# The wave's rows and their probes are one MATERIALIZED CTE: each probe runs once per row (left to itself,
# the planner re-ran the unnest and its probes for every outbox row, k x k probes); then the rows still ours
# are updated. One statement, so one snapshot: check and mark cannot be told apart by a concurrent write.
_START_WAVE_SQL = (
    """
    WITH v AS MATERIALIZED (
        SELECT * FROM unnest(""" + ", ".join(f"%({name}s)s::{kind}[]" for name, kind in _WAVE_COLUMNS) + """)
             AS v(""" + ", ".join(f'"{name}"' for name, _ in _WAVE_COLUMNS) + """)
        WHERE """ + _correlated(send_allowed_sql() + _START_PROBES_SQL) + """
          AND (v.contact_campaign_id IS NULL OR (""" + _correlated(contact_campaign_send_allowed_sql()) + """))
    )
    UPDATE outbound_messages om
    SET message_id_header = v.message_id, in_reply_to = v.in_reply_to, "references" = v."references",
        subject = v.subject, sender_identity_id = v.sender_id, send_started_at = %(now)s,
        attempts = om.attempts + 1, updated_at = %(now)s
    FROM v
    WHERE om.id = v.id AND om.claimed_at = %(claimed_at)s AND om.status = 'sending'
    RETURNING om.id
    """
)


def start_params(message: OutboundMessage, *, sender: EmailSenderIdentity, message_id: str, thread: Thread,
                 subject: str) -> dict[str, Any]:
    """One row of a wave's request-start statement."""
    address = normalise_email(message.to_address)
    cc = message.contact_campaign
    return {
        "id": message.id, "message_id": message_id, "in_reply_to": thread.in_reply_to[:255],
        "references": thread.references, "subject": subject[:300], "sender_id": sender.id,
        "tenant_id": message.tenant_id, "address": address, "domain": address.rsplit("@", 1)[1],
        "contact_campaign_id": cc.id if cc is not None else None,
        "campaign_id": cc.campaign_id if cc is not None else None,
        "node_id": message.node_id, "node_visit": message.node_visit,
    }


def start_requests(rows: list[dict[str, Any]], *, claimed_at: dt.datetime) -> set[int]:
    """Record the request start of a wave in ONE statement, each row only if the claim is still ours AND
    policy still allows its send; the ids it started (committed before any of their requests goes out)."""
    if not rows or settings.OUTREACH_SENDING_STOPPED:
        return set()
    params: dict[str, Any] = {"now": clock.now(), "claimed_at": claimed_at}
    for name, _ in _WAVE_COLUMNS:
        params[f"{name}s"] = [row[name] for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(_START_WAVE_SQL, params)
        return {row[0] for row in cursor.fetchall()}
