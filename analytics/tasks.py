"""Celery adapters of analytics."""
from __future__ import annotations

from celery import shared_task

from analytics.breaker import deliverability_check
from analytics.rollups import rollups_catch_up
from outreach.queues import TaskName


# Every 2 s from beat. One writer at a time (the advisory lock): a run that finds another one writing returns
# at once instead of holding a worker; at most 25 passes (500,000 facts), well inside the time limit.
@shared_task(name=TaskName.ROLLUP_PENDING, ignore_result=True, soft_time_limit=50, time_limit=60)
def rollup_pending() -> int:
    return rollups_catch_up(max_passes=25, wait=False)


@shared_task(name=TaskName.CHECK_DELIVERABILITY, ignore_result=True, soft_time_limit=120, time_limit=180)
def check_deliverability() -> int:
    return len(deliverability_check())
