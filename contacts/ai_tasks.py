"""Celery adapter for lead analysis: ids in, one service call."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from contacts.analysis import leads_analyse
from outreach.queues import TaskName

logger = logging.getLogger(__name__)


# acks_late: idempotent. A lead already analysed is skipped, and plan generation skips contact
# campaigns that already have a plan, so a redelivery after a worker crash repeats no paid work.
# Limits: a batch is at most ANALYSE_BATCH_SIZE (100) leads, each one AI call of at most
# OPENAI_TIMEOUT_SECONDS x AI_MAX_ATTEMPTS in the worst case, and most far quicker or the fallback.
@shared_task(name=TaskName.ANALYSE_LEADS, ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=5, max_retries=5,
             soft_time_limit=50 * 60, time_limit=55 * 60)
def analyse_leads(lead_ids: list[int]) -> None:
    queued = leads_analyse(lead_ids=[int(i) for i in lead_ids])
    logger.info("analysed %d lead(s); queued plans for %d contact campaign(s)", len(lead_ids), len(queued))
