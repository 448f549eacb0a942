"""Helpers for tests that start real processes (workers, dispatcher, servers)."""
from __future__ import annotations

import os

from django.conf import settings
from django.db import connection


def child_process_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process that must see this test's database and Redis.

    DATABASE_URL points at the test database itself (pytest-django's `test_` name), and
    TEST_REDIS_URL at this xdist worker's own Redis database. PYTEST_XDIST_WORKER is left
    out, so the child's test settings do not offset the Redis database a second time.
    """
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_XDIST_WORKER"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "outreach.settings.test",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env
