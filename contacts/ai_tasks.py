"""Celery adapter for lead analysis: ids in, one service call."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from contacts.analysis import leads_analyse

logger = logging.getLogger(__name__)


# acks_late: idempotent. A lead already analysed is skipped, and plan generation skips contact
# campaigns that already have a plan, so a redelivery after a worker crash repeats no paid work.
@shared_task(name="lead_analysis.analyse_leads", ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=5, max_retries=5)
def analyse_leads(lead_ids: list[int]) -> None:
    queued = leads_analyse(lead_ids=[int(i) for i in lead_ids])
    logger.info("analysed %d lead(s); queued plans for %d contact campaign(s)", len(lead_ids), len(queued))
