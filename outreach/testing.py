"""Helpers for tests that start real processes (workers, dispatcher, servers)."""
from __future__ import annotations

import os

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
