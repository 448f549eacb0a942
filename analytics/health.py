"""Queue and pipeline health: the figures the Prometheus endpoint, /health/ and the admin index show.

Read from the tables by their documented names (docs/internal-interfaces*.md: the outbox, scheduled actions
and webhook deliveries are table contracts) through the partial indexes each has for exactly these rows, and
capped, so a scrape stays cheap when a backlog is huge.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from analytics.selectors import rollup_lag_seconds
from outreach import clock
from outreach.queues import QUEUE_NAMES

COUNT_CAP = 1_000_000  # counts stop here: "at least a million" is all an alert needs

_BACKLOG_SQL = f"""
SELECT
  (SELECT count(*) FROM (SELECT 1 FROM scheduled_actions WHERE status = 'pending' AND due_at <= %(now)s
                         LIMIT {COUNT_CAP}) AS d),
  (SELECT min(due_at) FROM scheduled_actions WHERE status = 'pending' AND due_at <= %(now)s),
  (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' LIMIT {COUNT_CAP}) AS w),
  (SELECT min(received_at) FROM webhook_deliveries WHERE status = 'pending'),
  (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'failed' LIMIT {COUNT_CAP}) AS f),
  (SELECT count(*) FROM (SELECT 1 FROM outbound_messages WHERE status = 'unknown' LIMIT {COUNT_CAP}) AS u),
  (SELECT count(*) FROM (SELECT 1 FROM outbound_messages WHERE status = 'sending' LIMIT {COUNT_CAP}) AS s),
  (SELECT count(*) FROM (SELECT 1 FROM metrics_pending_facts LIMIT {COUNT_CAP}) AS p)
"""


@dataclass(frozen=True)
class PipelineHealth:
    due_actions_unclaimed: int
    due_actions_oldest_age_seconds: float
    webhook_deliveries_pending: int
    webhook_deliveries_oldest_age_seconds: float
    webhook_deliveries_failed: int
    outbox_unknown: int
    outbox_sending: int
    rollup_pending_facts: int
    rollup_lag_seconds: float
    celery_queue_lengths: dict[str, int]


def _age(now, oldest) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue of the Redis broker (a list per queue); -1 when unreachable."""
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1)
        with client.pipeline() as pipe:
            for name in QUEUE_NAMES:
                pipe.llen(name)
            return dict(zip(QUEUE_NAMES, (int(n) for n in pipe.execute()), strict=True))
    except redis.RedisError:
        return dict.fromkeys(QUEUE_NAMES, -1)


def pipeline_health() -> PipelineHealth:
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG_SQL, {"now": now})
        due, due_oldest, pending, pending_oldest, failed, unknown, sending, facts = cursor.fetchone()
    return PipelineHealth(
        due_actions_unclaimed=due, due_actions_oldest_age_seconds=_age(now, due_oldest),
        webhook_deliveries_pending=pending, webhook_deliveries_oldest_age_seconds=_age(now, pending_oldest),
        webhook_deliveries_failed=failed, outbox_unknown=unknown, outbox_sending=sending,
        rollup_pending_facts=facts, rollup_lag_seconds=rollup_lag_seconds(),
        celery_queue_lengths=celery_queue_lengths(),
    )
