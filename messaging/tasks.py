"""Celery adapters for messaging: primitive ids in, one service call, nothing returned.

All of these are idempotent (conditional claims, deduplicating inserts, row locks), so
``acks_late`` is safe: a task redelivered after a worker died repeats no side effect.
"""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="campaign_execution.deliver_messages", ignore_result=True, acks_late=True)
def deliver_messages(outbound_message_ids: list[int]) -> None:
    from messaging.delivery import outbound_messages_deliver

    report = outbound_messages_deliver(outbound_message_ids=outbound_message_ids)
    logger.info("delivered: sent=%d held=%d suppressed=%d failed=%d retrying=%d rate_limited=%d unknown=%d "
                "not_claimed=%d", len(report.sent), len(report.held), len(report.suppressed), len(report.failed),
                len(report.retrying), len(report.rate_limited), len(report.unknown), len(report.not_claimed))


@shared_task(name="campaign_execution.recover_stale_sends", ignore_result=True, acks_late=True)
def recover_stale_sends() -> None:
    """Beat, every minute: claims a dead worker left in `sending`, and outcomes (`sent`, `suppressed`,
    `send_failed`) the engine never heard because the worker died or the engine call failed after the batch."""
    from messaging.delivery import outbound_messages_recover_stale

    outbound_messages_recover_stale()


@shared_task(name="campaign_execution.sync_sender_identities", ignore_result=True, acks_late=True)
def sync_sender_identities() -> None:
    from messaging.sendgrid.errors import SendGridError
    from messaging.sendgrid.identities import sender_identities_sync

    try:
        changed = sender_identities_sync()
    except SendGridError as exc:
        # The next beat tick tries again; nothing is lost by skipping one.
        logger.warning("sender identity sync skipped: %s", exc)
        return
    logger.info("sender identities synced, %d changed status", changed)


@shared_task(name="webhooks.process_deliveries", ignore_result=True, acks_late=True)
def process_deliveries(webhook_delivery_ids: list[int]) -> None:
    from django.conf import settings

    from messaging.webhooks.processing import ABSORB_PENDING, webhook_deliveries_process

    absorb = getattr(settings, "WEBHOOK_PROCESS_ABSORB_PENDING", ABSORB_PENDING)
    report = webhook_deliveries_process(delivery_ids=webhook_delivery_ids, absorb_pending=absorb)
    if report.failed:
        logger.warning("webhook deliveries failed (left for the retry sweep): %s", report.failed)


@shared_task(name="webhooks.retry_deliveries", ignore_result=True, acks_late=True)
def retry_deliveries() -> None:
    """Beat: pending deliveries whose task was lost, and failed ones due for another try."""
    from messaging.webhooks.processing import webhook_deliveries_due_for_retry, webhook_deliveries_process

    ids = webhook_deliveries_due_for_retry()
    for start in range(0, len(ids), 20):
        webhook_deliveries_process(delivery_ids=ids[start:start + 20])
