"""Delivery's hook: re-arm the send of a message delivery could not send now (a 429, a hold found at send time).

messaging calls `send_action_reschedule` through campaigns.interface; the outbox row is read and canceled
through the outbox contract (campaigns.services.outbox), never messaging's model.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from campaigns import engine
from campaigns.models import ContactCampaign, ScheduledAction
from campaigns.scheduling import next_send_time
from campaigns.services.locking import LockedRow, lock_rows
from campaigns.services.outbox import (
    OUTBOX_QUEUED,
    OutboxMessage,
    outbox_message_cancel_queued,
    outbox_message_get,
    outbox_message_status,
)
from campaigns.services.work import send_action_key
from outreach import clock

log = logging.getLogger(__name__)


def send_action_reschedule(*, outbound_message_id: int, not_before: dt.datetime, reason: str
                           ) -> ScheduledAction | None:
    """(Re)arm the send of a still-queued message for `not_before` or later, moved out of quiet hours.

    For delivery: a 429's reset time, or a kill switch found on at send time. The message must be back in
    `queued` (delivery releases its claim first); otherwise nothing happens and None is returned.

    Only while the campaign is still on the message's node visit: a message that was `sending` when its
    node was left (leaving cancels only `queued` rows) or its campaign ended is canceled here instead, and
    None is returned, so it is never sent late (docs/engine.md). A `canceled` send action is never revived
    (its message is canceled too); a `done` one only while its node visit is current (see below).
    """
    message = outbox_message_get(message_id=outbound_message_id)
    if message is None or message.contact_campaign_id is None:
        return None
    cc_id = message.contact_campaign_id
    with transaction.atomic():
        rows = lock_rows([cc_id])
        row = rows.get(cc_id)
        if row is None or outbox_message_status(message_id=outbound_message_id) != OUTBOX_QUEUED:
            return None
        now = clock.now()
        cancel_reason = _why_not_rearmed(row, message)
        if cancel_reason:
            # Under the campaign lock, so no node change can slip in between; the row would otherwise
            # stay `queued` with no live send action.
            outbox_message_cancel_queued(message_id=outbound_message_id, reason=cancel_reason, now=now)
            log.info("held outbound message %s canceled, not re-armed: %s", outbound_message_id, cancel_reason)
            return None
        due = _next_due(row, not_before=not_before, now=now)
        action = _rearm(row, message, due=due, reason=reason, now=now)
    if action is not None:
        log.info("send of outbound message %s rescheduled to %s: %s", outbound_message_id, due.isoformat(),
                 reason)
    return action


def _why_not_rearmed(row: LockedRow, message: OutboxMessage) -> str:
    if row.state.status in engine.FINAL_STATUSES:
        return f"campaign ended: {row.state.status}"
    if (row.state.current_node_id, row.state.node_visit) != (message.node_id, message.node_visit):
        return "node left before sending"
    return ""


def _next_due(row: LockedRow, *, not_before: dt.datetime, now: dt.datetime) -> dt.datetime:
    earliest = max(not_before, now)
    if row.state.not_before is not None:
        earliest = max(earliest, row.state.not_before)
    return next_send_time(row.plan, earliest) if row.plan is not None else earliest


def _rearm(row: LockedRow, message: OutboxMessage, *, due: dt.datetime, reason: str, now: dt.datetime
           ) -> ScheduledAction | None:
    """Create or re-arm the send action of the message's node visit; None (message canceled) when it was
    canceled on purpose."""
    key = send_action_key(contact_campaign_id=row.id, node_id=message.node_id, node_visit=message.node_visit)
    live_status = ScheduledAction.Status.HELD if row.state.status == ContactCampaign.Status.PAUSED \
        else ScheduledAction.Status.PENDING
    payload = {"outbound_message_id": message.id, "rescheduled": reason[:200]}
    action = ScheduledAction.objects.filter(dedupe_key=key).first()
    if action is None:
        return ScheduledAction.objects.create(
            dedupe_key=key, tenant_id=row.tenant_id, contact_campaign_id=row.id, campaign_id=row.campaign_id,
            kind=ScheduledAction.Kind.SEND, node_id=message.node_id, node_visit=message.node_visit,
            due_at=due, status=live_status, outbound_message_id=message.id, payload=payload)
    if action.status == ScheduledAction.Status.CANCELED:
        # Canceled on purpose: never revived, and its message is not left queued with no send action.
        outbox_message_cancel_queued(message_id=message.id, reason="send action canceled", now=now)
        log.info("held outbound message %s canceled: its send action %s was canceled", message.id, action.id)
        return None
    # pending / held / claimed, or `done` by a lease sweep that found the row `sending` (it was
    # mid-batch): the campaign is still on this node visit and the row is queued and unsent, so
    # re-arming is the only way it is ever sent; the row's own claim keeps it to one send.
    action.due_at, action.status, action.claimed_at, action.finished_at = due, live_status, None, None
    action.outbound_message_id, action.payload = message.id, payload
    action.save(update_fields=["due_at", "status", "claimed_at", "finished_at", "outbound_message_id", "payload"])
    return action
