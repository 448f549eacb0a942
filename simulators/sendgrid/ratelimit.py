"""SendGrid's rate limits on the virtual clock, and the X-RateLimit-* headers every answer carries."""
from __future__ import annotations

import math

from simulators.sendgrid.state import SimState

DEFAULT_RATE_LIMIT = 10_000  # reported per second when no limit is configured; never enforced


class RateWindow:
    """A fixed rate window on the virtual clock: ``limit`` requests per ``length`` seconds."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit, self.length = limit, length
        self.start, self.count = 0.0, 0

    def hit(self, now: float, *, count: bool) -> tuple[bool, int, int]:
        start = math.floor(now / self.length) * self.length
        if start != self.start:
            self.start, self.count = start, 0
        allowed = self.count < self.limit
        if allowed and count:
            self.count += 1
        return allowed, max(0, self.limit - self.count), int(math.ceil(self.start + self.length))


def rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


def _window(state: SimState, limit: int, length: float) -> RateWindow:
    return state.windows.setdefault((limit, length), RateWindow(limit, length))


def rate_check(state: SimState, *, count: bool) -> tuple[bool, dict[str, str]]:
    """Count one request against the configured windows (lock held); headers SendGrid would send."""
    now = state.clock.now()
    limits = []
    if state.config.rate_limit_per_second:
        limits.append((state.config.rate_limit_per_second, 1.0))
    if state.config.rate_limit_per_minute:
        limits.append((state.config.rate_limit_per_minute, 60.0))
    if not limits:
        _, remaining, reset = _window(state, DEFAULT_RATE_LIMIT, 1.0).hit(now, count=count)
        return True, rate_headers(DEFAULT_RATE_LIMIT, remaining, reset)
    results = [(limit, *_window(state, limit, length).hit(now, count=False)) for limit, length in limits]
    refused = [r for r in results if not r[1]]
    if refused:
        limit, _, remaining, reset = max(refused, key=lambda r: r[3])
        return False, rate_headers(limit, 0, reset)
    if count:
        for limit, length in limits:
            state.windows[(limit, length)].hit(now, count=True)
    limit, _, remaining, reset = min(results, key=lambda r: r[2])
    return True, rate_headers(limit, max(0, remaining - (1 if count else 0)), reset)


def current_rate_headers(state: SimState) -> dict[str, str]:
    """The headers for an answer that is not counted (errors, routing)."""
    with state.lock:
        return rate_check(state, count=False)[1]
