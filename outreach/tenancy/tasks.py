"""Housekeeping of the tenancy tables."""
from __future__ import annotations

from celery import shared_task

from outreach.queues import TaskName
from outreach.tenancy import idempotency


# Batched deletes of an indexed range: a day's keys take seconds; the limits stop a stuck run.
@shared_task(name=TaskName.PRUNE_IDEMPOTENCY_RECORDS, ignore_result=True, soft_time_limit=120, time_limit=180)
def prune_idempotency_records() -> int:
    return idempotency.prune_expired()
