"""Celery adapters for the campaign engine: ids in, one service call (docs/engine.md)."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from campaigns.dispatcher import dispatch_due as dispatcher_pass
from campaigns.services import scheduled_actions_run

logger = logging.getLogger(__name__)

# A beat tick must finish well inside its interval; the rest of a backlog waits for the next tick
# (or for a dedicated `run_dispatcher` process).
DISPATCH_TIME_BUDGET_SECONDS = 4.0


@shared_task(name="campaign_execution.dispatch_due", ignore_result=True)
def dispatch_due() -> None:
    stats = dispatcher_pass(time_budget=DISPATCH_TIME_BUDGET_SECONDS)
    if stats.busy:
        logger.info("dispatch_due: %s", stats)


# acks_late: every action is re-checked under lock (still claimed, node visit still current), so running a
# redelivered message again is a no-op; losing one would leave timers for the lease sweep only.
@shared_task(name="campaign_execution.run_actions", ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=2, max_retries=5)
def run_actions(action_ids: list[int]) -> None:
    counts = scheduled_actions_run(action_ids=[int(i) for i in action_ids])
    logger.debug("run_actions: %s", counts)
