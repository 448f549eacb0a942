"""Celery adapter for plan generation: contact campaign ids in, one service call per id."""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from campaigns.generation import (
    PlanGenerationDeferred,
    contact_campaign_generate_plan,
    contact_campaigns_requeue_stale_generation,
)
from campaigns.generation_leases import batch_leased, generation_leases_expired
from campaigns.models import ContactCampaign
from outreach.publishing import publish, publish_ids
from outreach.queues import TaskName

logger = logging.getLogger(__name__)

# After this many deferrals (the tenant's AI cap stayed full), the built-in planner writes the plan:
# a contact waiting for minutes is fine, one waiting forever is not.
MAX_DEFERRALS = 5
MAX_DEFER_COUNTDOWN_SECONDS = 60
GENERATE_SOFT_LIMIT_SECONDS = 1800


# acks_late: idempotent. contact_campaign_generate_plan does nothing for a contact campaign that is no
# longer pending or already has a plan, and a Redis lock keeps two workers off the same one.
# Limits: a batch is up to 500 plans (enrolment publishes 500 ids a message, the lead analysis 20), each one
# or two model calls; at the soft limit the rest of the batch is handed back as a new message.
@shared_task(name=TaskName.GENERATE_PLANS, ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=5, max_retries=5,
             soft_time_limit=GENERATE_SOFT_LIMIT_SECONDS, time_limit=GENERATE_SOFT_LIMIT_SECONDS + 120)
def generate_plans(contact_campaign_ids: list[int], deferrals: int = 0) -> None:
    ids = [int(i) for i in contact_campaign_ids]
    # The batch lease: should this worker die, the sweep below republishes these ids within a lease.
    with batch_leased(ids):
        _generate_batch(ids, deferrals)


def _generate_batch(ids: list[int], deferrals: int) -> None:
    by_id = {cc.pk: cc for cc in ContactCampaign.objects.filter(pk__in=ids)}
    for index, cc_id in enumerate(ids):
        cc = by_id.get(cc_id)
        if cc is None:
            logger.info("contact campaign %s is gone", cc_id)
            continue
        try:
            contact_campaign_generate_plan(contact_campaign=cc, allow_defer=deferrals < MAX_DEFERRALS)
        except PlanGenerationDeferred as exc:
            # The tenant's AI capacity is in use: hand the rest of the batch back with a short countdown
            # (seconds, bounded) instead of holding this worker or dropping to the fallback at once.
            rest = ids[index:]
            countdown = max(1, min(MAX_DEFER_COUNTDOWN_SECONDS, int(exc.retry_after + 0.999)))
            logger.info("deferring %d plan(s) by %ss: %s", len(rest), countdown, exc)
            publish(TaskName.GENERATE_PLANS, args=[rest], kwargs={"deferrals": deferrals + 1}, countdown=countdown)
            return
        except SoftTimeLimitExceeded:
            # Out of time: the plans stored so far stay; the rest (this one included) goes out again.
            rest = ids[index:]
            logger.warning("plan batch out of time; handing %d plan(s) back", len(rest))
            publish(TaskName.GENERATE_PLANS, args=[rest], kwargs={"deferrals": deferrals})
            return
        except OperationalError:
            raise  # the database is away: let autoretry run the whole (idempotent) batch again
        except Exception:
            # One contact's failure (a bad row, a refused plan replacement) must not block the batch.
            logger.exception("contact campaign %s: plan generation failed", cc_id)


@shared_task(name=TaskName.REQUEUE_STALE_GENERATION, ignore_result=True, soft_time_limit=60, time_limit=90)
def requeue_stale_generation() -> None:
    """Beat: enrolments still waiting for a plan long after enrolment get their job published again."""
    requeued = contact_campaigns_requeue_stale_generation(
        older_than=dt.timedelta(seconds=settings.STALE_WORK_REQUEUE_AFTER_SECONDS))
    if requeued:
        logger.info("re-published plan generation for %d enrolment(s)", requeued)


@shared_task(name=TaskName.RECOVER_GENERATION_LEASES, ignore_result=True, soft_time_limit=10, time_limit=20)
def recover_generation_leases() -> None:
    """Beat, every PLAN_GENERATION_SWEEP_SECONDS: the enrolments of a job whose worker died (its batch lease ran
    out, PLAN_GENERATION_LEASE_SECONDS after its last heartbeat) are published again at once."""
    ids = generation_leases_expired()
    if ids:
        publish_ids(task_name=TaskName.GENERATE_PLANS, ids=ids)
        logger.warning("plan generation of %d enrolment(s) resumed: their worker stopped renewing its lease", len(ids))
