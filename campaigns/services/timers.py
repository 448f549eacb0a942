"""Timers run by the dispatcher: claimed timeout and wait actions through the engine, claimed sends re-handed.

The dispatcher (campaigns.dispatcher) claims due `scheduled_actions` rows and publishes their ids; this is
what `campaign_execution.run_actions` runs. Each action is re-checked under lock (architecture rule 3).
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction

from campaigns import engine
from campaigns.engine import EngineEvent
from campaigns.holds import send_holds
from campaigns.models import ContactCampaign, ScheduledAction
from campaigns.services.events import handle_items
from campaigns.services.outbox import OUTBOX_QUEUED, OUTBOX_TABLE
from outreach import clock
from outreach.publishing import publish_ids_after_commit
from outreach.queues import TaskName


def scheduled_actions_run(*, action_ids: Sequence[int]) -> dict[str, int]:
    """Run claimed timeout / wait actions through the engine; re-hand claimed sends to delivery.

    Idempotent: each action is re-checked under lock (still `claimed`, and for timers the node visit still
    current); anything else is a no-op. Returns counts for logging.
    """
    counts = {"timers": 0, "sends": 0, "skipped": 0}
    if not action_ids:
        return counts
    rows = list(ScheduledAction.objects.filter(id__in=list(action_ids), status=ScheduledAction.Status.CLAIMED)
                .values_list("id", "contact_campaign_id", "kind", "node_id", "node_visit", "event", "payload",
                             "due_at"))
    counts["skipped"] = len(set(action_ids)) - len(rows)
    timer_items: list[tuple[int, EngineEvent]] = []
    timer_action_ids: list[int | None] = []
    send_ids: list[int] = []
    for action_id, cc_id, kind, node_id, visit, event, payload, due_at in rows:
        if kind == ScheduledAction.Kind.SEND:
            send_ids.append(action_id)
            continue
        event_type = engine.WAIT_ELAPSED if kind == ScheduledAction.Kind.WAIT else event
        detail = {"scheduled_action_id": action_id}
        if isinstance(payload, dict) and "transition_index" in payload:
            detail["transition_index"] = payload["transition_index"]
        timer_items.append((cc_id, EngineEvent(type=event_type, occurred_at=due_at, node_id=node_id,
                                               node_visit=visit, detail=detail)))
        timer_action_ids.append(action_id)
    if timer_items:
        handle_items(timer_items, action_ids=timer_action_ids)
        counts["timers"] = len(timer_items)
    if send_ids:
        counts["sends"] = _rehand_sends(send_ids)
    return counts


def _rehand_sends(action_ids: list[int]) -> int:
    """Claimed sends: hand still-queued messages to delivery again; finish the others."""
    holds = send_holds()
    now = clock.now()
    deliver: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT sa.id, sa.tenant_id, sa.campaign_id, sa.outbound_message_id, om.status, cc.status
            FROM scheduled_actions sa
            JOIN contact_campaigns cc ON cc.id = sa.contact_campaign_id
            LEFT JOIN {OUTBOX_TABLE} om ON om.id = sa.outbound_message_id
            WHERE sa.id = ANY(%s) AND sa.status = 'claimed'
            ORDER BY sa.id FOR UPDATE OF sa SKIP LOCKED
            """,
            [action_ids],
        )
        done, held = [], []
        for action_id, tenant_id, campaign_id, om_id, om_status, cc_status in cursor.fetchall():
            if om_status != OUTBOX_QUEUED:
                done.append(action_id)
            elif cc_status == ContactCampaign.Status.PAUSED or holds.holds(tenant_id=tenant_id,
                                                                           campaign_id=campaign_id):
                held.append(action_id)
            else:
                deliver.append(om_id)
        if done:
            cursor.execute("UPDATE scheduled_actions SET status = 'done', finished_at = %s WHERE id = ANY(%s)",
                           [now, done])
        if held:
            cursor.execute("UPDATE scheduled_actions SET status = 'held', claimed_at = NULL WHERE id = ANY(%s)",
                           [held])
        publish_ids_after_commit(task_name=TaskName.DELIVER_MESSAGES, ids=deliver)
    return len(deliver)
