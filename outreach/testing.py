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


_PARENT_INDEX_SQL = """
WITH RECURSIVE up(child, top) AS (
    SELECT c.oid, c.oid FROM pg_class c WHERE c.relname = ANY(%s)
    UNION ALL
    SELECT up.child, i.inhparent FROM up JOIN pg_inherits i ON i.inhrelid = up.top
)
SELECT c.relname, t.relname FROM up
JOIN pg_class c ON c.oid = up.child JOIN pg_class t ON t.oid = up.top
WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = up.top)
"""


def _plan_index_names(node: dict) -> set[str]:
    names = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        names |= _plan_index_names(child)
    return names


def top_index_name(name: str) -> str:
    """An index's declared name: a partition's copy of a partitioned table's index is named after its parent."""
    with connection.cursor() as cursor:
        cursor.execute(_PARENT_INDEX_SQL, [[name]])
        row = cursor.fetchone()
    return row[1] if row else name


def indexes_used(sql: str, params: Any = None, *, seqscan: bool = False) -> set[str]:
    """The indexes PostgreSQL's plan for `sql` reads, each named as declared (a partition's own copy of an
    index is reported under its partitioned parent's name). With `seqscan=False` the planner avoids
    sequential scans, as it would on a table of millions of rows instead of a test's handful."""
    with connection.cursor() as cursor:
        if not seqscan:
            cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
        if not seqscan:
            cursor.execute("SET LOCAL enable_seqscan = on")
        plan = json.loads(plan) if isinstance(plan, str) else plan
        names = _plan_index_names(plan[0]["Plan"])
        if not names:
            return set()
        cursor.execute(_PARENT_INDEX_SQL, [list(names)])
        return {top for _, top in cursor.fetchall()}


def queryset_indexes_used(queryset: Any, **kwargs: Any) -> set[str]:
    """`indexes_used` for a queryset's SQL."""
    sql, params = queryset.query.sql_with_params()
    return indexes_used(sql, params, **kwargs)
