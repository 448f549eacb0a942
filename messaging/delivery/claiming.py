"""Claiming outbox rows and moving a claimed row on, conditionally on the claim still being ours.

The claim is one conditional UPDATE ... WHERE status = 'queued' RETURNING for the whole batch: two workers
handed the same ids never both get a row. Every later move of the row (`finish`, `hold`) is conditional on
`claimed_at` and the status too, so a row a lease recovery took back is never moved by its old claimant.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce

import campaigns.interface
from messaging.models import OutboundMessage
from outreach import clock

logger = logging.getLogger(__name__)


def claim(ids: list[int], now: dt.datetime) -> list[int]:
    """queued -> sending for those of `ids` still queued; returns the ids this call claimed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages SET status = 'sending', claimed_at = %s, send_started_at = NULL, "
            "updated_at = %s WHERE id = ANY(%s) AND status = 'queued' RETURNING id",
            [now, now, ids],
        )
        return sorted(row[0] for row in cursor.fetchall())


def still_claimed(message: OutboundMessage, claimed_at: dt.datetime) -> QuerySet[OutboundMessage]:
    """Rows still held by this claim (a lease recovery may have taken a row back)."""
    return OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at,
                                          status=OutboundMessage.Status.SENDING)


def finish(message: OutboundMessage, *, claimed_at: dt.datetime, statuses: tuple[str, ...], **updates: Any) -> bool:
    """Settle the row (sent, failed, suppressed, canceled, unknown) if this claim still holds it in `statuses`."""
    updates.setdefault("updated_at", clock.now())
    return bool(OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at, status__in=statuses)
                .update(**updates))


def finish_sent(rows: list[tuple[int, str | None, dt.datetime]], *, claimed_at: dt.datetime) -> set[int]:
    """Settle many 202s at once, (id, provider message id, sent at) each, in one statement: the same
    conditions as `finish` for one (this claim, `sending` or `unknown`); the ids it settled."""
    if not rows:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages om SET status = 'sent', sent_at = v.sent_at, "
            "provider_message_id = v.provider_message_id, status_reason = '', last_error = '', "
            "next_attempt_at = NULL, updated_at = %s "
            "FROM (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) OFFSET 0) "
            "AS v(id, provider_message_id, sent_at) "
            "WHERE om.id = v.id AND om.claimed_at = %s AND om.status IN ('sending', 'unknown') RETURNING om.id",
            [clock.now(), [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], claimed_at],
        )
        return {row[0] for row in cursor.fetchall()}


def hold(message: OutboundMessage, *, claimed_at: dt.datetime, reason: str, not_before: dt.datetime,
         last_error: str | None = None, undo_attempt: bool = False,
         undeliverable_since: dt.datetime | None = None) -> bool:
    """Back to queued and re-armed, atomically: if re-arming fails the row stays `sending` and lease
    recovery (which knows the request did not go out) re-queues it. `undeliverable_since`: a failed
    attempt; the row keeps the time of its first one (the failure bound counts from it)."""
    updates: dict[str, Any] = {"status": OutboundMessage.Status.QUEUED, "status_reason": reason[:300],
                               "claimed_at": None, "next_attempt_at": not_before, "updated_at": clock.now()}
    if last_error is not None:
        updates["last_error"] = last_error
    if undeliverable_since is not None:
        updates["undeliverable_since"] = Coalesce(F("undeliverable_since"), Value(undeliverable_since))
    if undo_attempt:
        updates["attempts"] = F("attempts") - 1
    with transaction.atomic():
        if not still_claimed(message, claimed_at).update(**updates):
            return False
        action = campaigns.interface.send_action_reschedule(outbound_message_id=message.id, not_before=not_before,
                                                            reason=reason)
    if action is None:
        # No contact campaign to re-arm it for (or it just ended): nothing will retry this row.
        logger.warning("outbound message %s held (%s) but no send action was re-armed", message.id, reason)
    return True
