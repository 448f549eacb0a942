"""Plan-generation leases in Redis: short, renewed while the worker lives, so a killed worker's plans resume quickly.

Two things are held while a `generate_plans` job runs, both for PLAN_GENERATION_LEASE_SECONDS (real time) and
renewed every third of it by a heartbeat thread of the worker process:

- a **batch lease**: every enrolment id of the job in one sorted set, scored by when its lease runs out. A job
  that ends (done, handed back, failed) takes its ids out. A worker killed mid-job (SIGKILL, OOM, a lost
  host) stops renewing: its ids' leases run out within the lease, and the beat sweep
  (`generation_leases_expired`, every PLAN_GENERATION_SWEEP_SECONDS) takes them and publishes them again. The
  killed job's own Celery message (acks_late) only comes back after the broker's visibility timeout; the
  sweep does not wait for it, and when it comes back it finds the plans written.
- a **per-enrolment lock** around the model call, so a redelivered or republished job does not pay for a plan
  another live worker is writing. With a fixed 10-minute lock a killed worker's enrolment was skipped by
  every recovery for 10 minutes; with the renewed lease it is free within PLAN_GENERATION_LEASE_SECONDS.

Redis is the right place: the lease is about live processes, not about rows; if Redis is lost, the leases go
with it and the database sweep (`contact_campaigns_requeue_stale_generation`) still finds every pending
enrolment.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

from outreach.ai.client import KEY_PREFIX, redis_client

logger = logging.getLogger(__name__)

_LEASES_KEY = f"{KEY_PREFIX}:generate:leases"


def lease_seconds() -> float:
    return float(settings.PLAN_GENERATION_LEASE_SECONDS)


@contextmanager
def _heartbeat(beat: Callable[[], object], *, every: float) -> Iterator[None]:
    """Call `beat` every `every` seconds on a daemon thread while the block runs (dies with the process)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease; the next one renews it
                logger.warning("plan-generation lease heartbeat failed", exc_info=True)

    thread = threading.Thread(target=run, name="generation-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every)


@contextmanager
def batch_leased(contact_campaign_ids: list[int]) -> Iterator[None]:
    """Hold the batch lease of a job's enrolments while the block runs; the ids leave the set at the end."""
    ids = [str(i) for i in contact_campaign_ids]
    client = redis_client()

    def renew() -> None:
        client.zadd(_LEASES_KEY, dict.fromkeys(ids, time.time() + lease_seconds()))

    if not ids:
        yield
        return
    renew()
    try:
        with _heartbeat(renew, every=lease_seconds() / 3):
            yield
    finally:
        try:
            client.zrem(_LEASES_KEY, *ids)
        except Exception:  # noqa: BLE001 - left in, the ids run out and are republished: a harmless repeat
            logger.warning("could not drop the plan-generation leases of %d enrolment(s)", len(ids), exc_info=True)


@contextmanager
def generation_locked(contact_campaign_id: int) -> Iterator[bool]:
    """The per-enrolment lock (True if this worker holds it, False if another live worker does)."""
    lock = redis_client().lock(f"{KEY_PREFIX}:generate:{contact_campaign_id}", timeout=lease_seconds(),
                               blocking=False)
    if not lock.acquire():
        yield False
        return
    try:
        with _heartbeat(lock.reacquire, every=lease_seconds() / 3):
            yield True
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - an expired lock is not worth failing the task for
            logger.warning("contact campaign %s: generation lock already expired", contact_campaign_id)


def generation_leases_expired(*, now: float | None = None) -> list[int]:
    """Take the enrolment ids whose batch lease ran out (their worker died) out of the set; returns them."""
    client = redis_client()
    cutoff = time.time() if now is None else now
    ids = client.zrangebyscore(_LEASES_KEY, "-inf", cutoff)
    if not ids:
        return []
    # Only what this call removed is returned: two sweeps at once do not both publish an id.
    taken = [raw for raw in ids if client.zrem(_LEASES_KEY, raw)]
    return sorted(int(raw) for raw in taken)
