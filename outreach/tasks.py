"""Diagnostics: prove that a worker consumes a queue, end to end through the broker.

`analytics.ping` (TaskName.PING) is routed to the analytics queue by its name; publish it to any
other queue with `app.send_task("analytics.ping", args=[token], queue=...)` to
check that queue. The worker answers by writing a Redis key (results are ignored
project-wide, so there is no result backend to read an answer from).
"""
from __future__ import annotations

import json

import redis
from celery import shared_task
from django.conf import settings

from outreach import clock
from outreach.queues import TaskName

PING_KEY_PREFIX = "outreach:ping:"
PING_TTL_SECONDS = 3600


def ping_key(token: str) -> str:
    return f"{PING_KEY_PREFIX}{token}"


# One Redis write: seconds are plenty, and a ping stuck longer than that is itself the answer.
@shared_task(name=TaskName.PING, bind=True, ignore_result=True, soft_time_limit=10, time_limit=20)
def ping(self, token: str) -> None:
    delivery = self.request.delivery_info or {}
    answer = {
        "worker": self.request.hostname,
        "queue": delivery.get("routing_key") or "",
        "at": clock.now().isoformat(),
    }
    redis.Redis.from_url(settings.REDIS_URL).set(ping_key(token), json.dumps(answer), ex=PING_TTL_SECONDS)


def ping_answer(token: str) -> dict | None:
    """What the worker wrote for `token`, or None if no worker has run the ping yet."""
    raw = redis.Redis.from_url(settings.REDIS_URL).get(ping_key(token))
    return json.loads(raw) if raw else None
