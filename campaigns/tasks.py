"""Celery adapters for the campaign engine: ids in, one service call (docs/engine.md)."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from campaigns.dispatcher import dispatch_due as dispatcher_pass
from campaigns.services import scheduled_actions_run
from outreach.queues import TaskName

logger = logging.getLogger(__name__)

# A beat tick must finish well inside its interval; the rest of a backlog waits for the next tick
# (or for a dedicated `run_dispatcher` process).
DISPATCH_TIME_BUDGET_SECONDS = 4.0


# Limits: a tick spends at most DISPATCH_TIME_BUDGET_SECONDS claiming, then one release and one lease pass.
@shared_task(name=TaskName.DISPATCH_DUE, ignore_result=True, soft_time_limit=30, time_limit=45)
def dispatch_due() -> None:
    stats = dispatcher_pass(time_budget=DISPATCH_TIME_BUDGET_SECONDS)
    if stats.busy:
        logger.info("dispatch_due: %s", stats)


# acks_late: every action is re-checked under lock (still claimed, node visit still current), so running a
# redelivered message again is a no-op; losing one would leave timers for the lease sweep only.
# Limits: up to PUBLISH_CHUNK (500) timers through the engine, a few statements per HANDLE_CHUNK.
@shared_task(name=TaskName.RUN_ACTIONS, ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=2, max_retries=5, soft_time_limit=120, time_limit=150)
def run_actions(action_ids: list[int]) -> None:
    counts = scheduled_actions_run(action_ids=[int(i) for i in action_ids])
    logger.debug("run_actions: %s", counts)
