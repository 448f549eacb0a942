"""Test helpers: child processes that share the test database and Redis, and the test broker's queues."""
from __future__ import annotations

import base64
import json
import os
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from outreach.settings.env import database_url


def child_process_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process that must see this test's database and Redis.

    DATABASE_URL points at the test database itself (pytest-django's `test_` name), and
    TEST_REDIS_URL at this xdist worker's own Redis database. PYTEST_XDIST_WORKER is left
    out, so the child's test settings do not offset the Redis database a second time.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_XDIST_WORKER"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "outreach.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def _broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def broker_messages(queue: str) -> list[dict[str, Any]]:
    """Every Celery message waiting in `queue` on the test broker, oldest first: task, args, kwargs, eta."""
    out = []
    for raw in reversed(_broker().lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP: oldest last
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append({"task": message["headers"]["task"], "args": args, "kwargs": kwargs,
                    "eta": message["headers"].get("eta")})
    return out


def broker_purge(*queues: str) -> None:
    _broker().delete(*queues)


def queued_plan_jobs() -> list[dict[str, Any]]:
    """The plan-generation messages waiting on the test broker, oldest first: task, contact campaign ids, eta."""
    return [{"task": m["task"], "ids": m["args"][0], "eta": m["eta"]} for m in broker_messages("campaign_creation")]
