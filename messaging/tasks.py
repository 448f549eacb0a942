"""Celery adapters for messaging: primitive ids in, one service call, nothing returned.

All of these are idempotent (conditional claims, deduplicating inserts, row locks), so
``acks_late`` is safe: a task redelivered after a worker died repeats no side effect.

Time limits: the soft limit raises inside the task, the hard one kills the worker process; what either
leaves behind is what the sweeps already recover (rows left `sending` past SENDING_LEASE, deliveries left
pending or failed), so a limit never loses work.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from messaging.delivery import outbound_messages_deliver, outbound_messages_recover_stale
from messaging.sendgrid.errors import SendGridError
from messaging.sendgrid.identities import sender_identities_sync
from messaging.webhooks.processing import webhook_deliveries_due_for_retry, webhook_deliveries_process
from outreach.queues import TaskName

logger = logging.getLogger(__name__)

# Retried deliveries processed per call by the retry sweep.
RETRY_CHUNK = 20


# A batch of up to 500 sends, up to DELIVERY_CONCURRENCY in flight, each request bounded by
# SENDGRID_REQUEST_TIMEOUT_SECONDS: seconds. Hard limit at twice SENDING_LEASE (60 s): by then lease recovery
# has taken the claim back anyway (its unstarted rows re-queued, its started ones `unknown`).
@shared_task(name=TaskName.DELIVER_MESSAGES, ignore_result=True, acks_late=True, soft_time_limit=100,
             time_limit=120)
def deliver_messages(outbound_message_ids: list[int]) -> None:
    report = outbound_messages_deliver(outbound_message_ids=outbound_message_ids)
    logger.info("delivered: sent=%d held=%d suppressed=%d failed=%d retrying=%d rate_limited=%d paused=%d "
                "unknown=%d not_claimed=%d", len(report.sent), len(report.held), len(report.suppressed),
                len(report.failed), len(report.retrying), len(report.rate_limited), len(report.paused),
                len(report.unknown), len(report.not_claimed))


# Beat, every 20 s (expires at 30 s): bounded passes (1,000 stale claims, 20 pages of lost events per outcome).
@shared_task(name=TaskName.RECOVER_STALE_SENDS, ignore_result=True, acks_late=True, soft_time_limit=120,
             time_limit=180)
def recover_stale_sends() -> None:
    """Beat, every 20 s: claims a dead worker left in `sending`, and outcomes (`sent`, `suppressed`,
    `send_failed`) the engine never heard because the worker died or the engine call failed after the batch."""
    outbound_messages_recover_stale()


# Beat, every 10 minutes: a few SendGrid API calls.
@shared_task(name=TaskName.SYNC_SENDER_IDENTITIES, ignore_result=True, acks_late=True, soft_time_limit=120,
             time_limit=180)
def sync_sender_identities() -> None:
    try:
        changed = sender_identities_sync()
    except SendGridError as exc:
        # The next beat tick tries again; nothing is lost by skipping one.
        logger.warning("sender identity sync skipped: %s", exc)
        return
    logger.info("sender identities synced, %d changed status", changed)


# One transaction over a few POSTs of ~1,000 events each: seconds; a stuck one is left for the retry sweep.
@shared_task(name=TaskName.PROCESS_WEBHOOK_DELIVERIES, ignore_result=True, acks_late=True, soft_time_limit=240,
             time_limit=300)
def process_deliveries(webhook_delivery_ids: list[int]) -> None:
    report = webhook_deliveries_process(delivery_ids=webhook_delivery_ids,
                                        absorb_pending=settings.WEBHOOK_PROCESS_ABSORB_PENDING)
    if report.failed:
        logger.warning("webhook deliveries failed (left for the retry sweep): %s", report.failed)


# Beat, every 30 s: up to 400 deliveries, 20 a transaction.
@shared_task(name=TaskName.RETRY_WEBHOOK_DELIVERIES, ignore_result=True, acks_late=True, soft_time_limit=540,
             time_limit=600)
def retry_deliveries() -> None:
    """Beat: pending deliveries whose task was lost, and failed ones due for another try."""
    ids = webhook_deliveries_due_for_retry()
    for start in range(0, len(ids), RETRY_CHUNK):
        webhook_deliveries_process(delivery_ids=ids[start:start + RETRY_CHUNK])
