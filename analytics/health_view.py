"""GET /health/: for load balancers. 200 when the database, Redis and the broker answer and the rollups are
fresh enough (HEALTH_MAX_ROLLUP_LAG_SECONDS), else 503; the body says which check failed. No secrets in it."""
from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from analytics.selectors import rollup_lag_seconds


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _ping(url: str) -> str:
    redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    return "ok"


def _rollup_lag() -> str:
    lag = rollup_lag_seconds()
    if lag > settings.HEALTH_MAX_ROLLUP_LAG_SECONDS:
        raise RuntimeError(f"rollups {lag:.0f} s behind (limit {settings.HEALTH_MAX_ROLLUP_LAG_SECONDS} s)")
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "redis": lambda: _ping(settings.REDIS_URL),
    "broker": lambda: _ping(settings.CELERY_BROKER_URL),
    "rollup_lag": _rollup_lag,
}


def health_view(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency is what this reports
            results[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
    healthy = all(result == "ok" for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "failing", "checks": results}, status=200 if healthy else 503)
