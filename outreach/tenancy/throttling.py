"""REST API throttles: per caller (an API key, or a staff user's session) and per tenant, counted in Redis.

Every process of the web tier shares the counts in Redis (REDIS_URL), so the limits hold across gunicorn
workers and machines. Fixed windows: one round trip per throttle per request (INCR, and EXPIRE NX in the same
pipeline to start the window): cheap, and at worst twice the rate across a window boundary.
A refused call is DRF's `Throttled`: a 429 in the one error shape with `Retry-After` (outreach/errors.py).

Rates are settings (API_THROTTLE_RATE_PER_KEY, API_THROTTLE_RATE_PER_TENANT): "<requests>/<second|minute|
hour|day>". Calls that authenticate as nobody are refused by the permission check before any throttle.
"""
from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from outreach.ai.client import redis_client
from outreach.tenancy.authentication import TENANT_CONTEXT_ATTRIBUTE, ApiKeyPrincipal

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """(requests, period in seconds) of "600/minute"."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


class _WindowThrottle(BaseThrottle):
    scope = ""

    def rate(self) -> str:
        raise NotImplementedError

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        limit, period = parse_rate(self.rate())
        now = time.time()
        key = self.window_key(ident, period, now)
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, period + 1, nx=True)  # the window's first call starts its clock
        count, _ = pipe.execute()
        self._wait = (now // period + 1) * period - now
        return count <= limit

    def window_key(self, ident: str, period: int, now: float) -> str:
        return f"outreach:throttle:{self.scope}:{ident}:{period}:{int(now // period)}"

    def wait(self) -> float:
        return self._wait


class CallerRateThrottle(_WindowThrottle):
    """One API key (or one staff user's session) at most API_THROTTLE_RATE_PER_KEY."""

    scope = "caller"

    def rate(self) -> str:
        return settings.API_THROTTLE_RATE_PER_KEY

    def ident(self, request) -> str | None:
        user = request.user
        if isinstance(user, ApiKeyPrincipal):
            return f"key:{user.api_key.prefix}"  # random: a new test database's key 1 is not the last one's
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return None


class TenantRateThrottle(_WindowThrottle):
    """All callers of one tenant together at most API_THROTTLE_RATE_PER_TENANT (more keys buy no more)."""

    scope = "tenant"

    def rate(self) -> str:
        return settings.API_THROTTLE_RATE_PER_TENANT

    def ident(self, request) -> str | None:
        user = request.user
        if isinstance(user, ApiKeyPrincipal):
            return f"tenant:{user.api_key.tenant_id}"
        # A staff session: the tenant its permission check resolved (outreach.tenancy.api.tenant_context).
        context = getattr(request, TENANT_CONTEXT_ATTRIBUTE, None)
        return f"tenant:{context.tenant.pk}" if context is not None else None
