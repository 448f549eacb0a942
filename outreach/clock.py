"""The one place the system reads the time.

In production the clock is the wall clock. In the demo it runs fast (CLOCK_SPEED
virtual seconds per real second) from an epoch stored in Redis so that every
process (web, worker, dispatcher, simulator) agrees on the same virtual time.
Production settings refuse CLOCK_SPEED != 1.
"""
from __future__ import annotations

import datetime as dt
import time

from django.conf import settings

_EPOCH_KEY = "outreach:clock:epoch"
_cached_epoch: tuple[float, float] | None = None  # (real_start, virtual_start)


def _virtual_epoch() -> tuple[float, float]:
    global _cached_epoch
    if _cached_epoch is None:
        import redis

        raw = redis.Redis.from_url(settings.REDIS_URL).get(_EPOCH_KEY)
        if raw is None:
            now = time.time()
            _cached_epoch = (now, now)
        else:
            real_start, virtual_start = (float(x) for x in raw.decode().split(":"))
            _cached_epoch = (real_start, virtual_start)
    return _cached_epoch


def start_virtual_clock(*, virtual_start: float | None = None, real_start: float | None = None) -> None:
    """Anchor the shared virtual clock now (used by the demo before processes start). With `real_start`,
    write back an anchor that already exists (the chaos run does after a Redis restart wiped it), so the
    processes started afterwards read the very clock the running ones cached."""
    import redis

    global _cached_epoch
    real_start = time.time() if real_start is None else real_start
    virtual = real_start if virtual_start is None else virtual_start
    redis.Redis.from_url(settings.REDIS_URL).set(_EPOCH_KEY, f"{real_start}:{virtual}")
    _cached_epoch = (real_start, virtual)


def now() -> dt.datetime:
    speed = settings.CLOCK_SPEED
    if speed == 1.0:
        return dt.datetime.now(dt.UTC)
    real_start, virtual_start = _virtual_epoch()
    virtual = virtual_start + (time.time() - real_start) * speed
    return dt.datetime.fromtimestamp(virtual, dt.UTC)


def real_seconds(virtual_seconds: float) -> float:
    """How long a virtual interval lasts in real time (for sleeps in loops)."""
    return virtual_seconds / settings.CLOCK_SPEED
