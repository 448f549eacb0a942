"""Send rate limit checks per second (messaging/rate_limits.py), as delivery makes them.

One `send_rate_limits_reserve` call per delivery batch: limits from the in-process cache (one small
query every SEND_RATE_LIMITS_CACHE_SECONDS), counters and keys built in Python, one pipelined EVALSHA
per tenant in the batch, decisions read back. Every message has 3 applicable limits: its tenant, its
sender (one of 5) and its recipient domain (one of 20).

- admitted: caps far above the traffic, every message reserves room on 3 counters;
- refused: caps of 0, every message is refused and gets an overflow ticket (the saturated case);
- 3 windows: the same 3 limits with per_minute, per_hour and per_day each (9 counters a message).

The ceilings table (architecture.md) puts one Lua token-bucket call at ~6,600/s sequential and
~21,000/s pipelined 100 (hiredis: 10,000 / 39,000): checks per message must beat that to matter.
"""
from __future__ import annotations

import time
import uuid

BATCH_SIZES = (100, 500)
MESSAGES_PER_RUN = 50_000
SENDERS = 5
DOMAINS = 20


def _setup(*, caps: dict[str, int | None]):
    from messaging.models import SendRateLimit
    from messaging.rate_limits import RateLimitCandidate
    from outreach.tenancy.tests.factories import TenantFactory

    tenant = TenantFactory(slug=f"bench-rate-limits-{uuid.uuid4().hex[:8]}")
    senders = [f"rep{i}@seller.example" for i in range(SENDERS)]
    domains = [f"domain{i}.example" for i in range(DOMAINS)]
    rows = [SendRateLimit(tenant=tenant, scope="tenant", key="", **caps)]
    rows += [SendRateLimit(tenant=tenant, scope="sender", key=s, **caps) for s in senders]
    rows += [SendRateLimit(tenant=tenant, scope="recipient_domain", key=d, **caps) for d in domains]
    SendRateLimit.objects.bulk_create(rows)

    def batch(start: int, size: int) -> list[RateLimitCandidate]:
        return [RateLimitCandidate(message_id=i, tenant_id=tenant.id, sender_email=senders[i % SENDERS],
                                   to_address=f"c{i}@{domains[i % DOMAINS]}") for i in range(start, start + size)]
    return batch


def _measure(label: str, *, caps: dict[str, int | None], expect_admitted: bool) -> None:
    from messaging.rate_limits import send_rate_limit_counters_reset, send_rate_limits_reserve

    batch = _setup(caps=caps)
    for size in BATCH_SIZES:
        send_rate_limit_counters_reset()
        batches = [batch(n * size, size) for n in range(MESSAGES_PER_RUN // size)]
        send_rate_limits_reserve(candidates=batches[0])  # warm: limits cached, script loaded
        admitted = 0
        started = time.perf_counter()
        for candidates in batches:
            admitted += len(send_rate_limits_reserve(candidates=candidates).allowed)
        elapsed = time.perf_counter() - started
        n = len(batches) * size
        assert (admitted == n) if expect_admitted else (admitted == 0), (label, admitted, n)
        print(f"   {label}, batches of {size}: {n / elapsed:,.0f} checks/s ({len(batches) / elapsed:,.0f} batches/s, "
              f"{elapsed / len(batches) * 1000:.2f} ms a batch)", flush=True)


def main() -> None:
    import redis.utils

    from messaging.rate_limits import send_rate_limit_counters_reset, send_rate_limits_cache_clear

    print(f"   redis-py parser: {'hiredis' if redis.utils.HIREDIS_AVAILABLE else 'python'}; "
          f"{MESSAGES_PER_RUN:,} messages a run; 3 limits a message", flush=True)
    send_rate_limits_cache_clear()
    try:
        _measure("admitted, 3 limits x per_hour", caps={"per_minute": None, "per_hour": 10**9, "per_day": None},
                 expect_admitted=True)
        _measure("refused, 3 limits x per_hour", caps={"per_minute": None, "per_hour": 0, "per_day": None},
                 expect_admitted=False)
        _measure("admitted, 3 limits x 3 windows", caps={"per_minute": 10**9, "per_hour": 10**9, "per_day": 10**9},
                 expect_admitted=True)
    finally:
        send_rate_limit_counters_reset()
