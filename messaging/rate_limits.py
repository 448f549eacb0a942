"""Send rate limits (`send_rate_limits`, plus SendGrid IP warmup caps) enforced at delivery time.

One call per delivery batch: `send_rate_limits_reserve(candidates=[...])` answers which messages may go
now and, for the others, the earliest time they may go and which limit held them. The caps live in
Redis counters updated by a Lua script (EVALSHA; loaded once, reloaded only after a NOSCRIPT); every
tenant of the batch gets one script call and all of them travel in one pipeline: one round trip per
batch, whatever its size (architecture.md: ~6,600 sequential calls/s vs ~21,000 pipelined).

Windows are FIXED windows aligned on the clock's epoch (minute, hour, UTC day), computed from
`outreach.clock.now()` in Python and handed to the script, never from Redis' own TIME: the demo's
virtual clock and the tests' frozen clock decide which window a send belongs to. Why fixed windows
rather than a sliding log or a token bucket:
- the caps people set here are volumes ("20 an hour to gmail.com", SendGrid's warmup "N per hour"),
  and a fixed window is exactly that volume per calendar hour/day, easy to explain in the admin;
- a window's state is one small hash (`n` admitted, `o` overflow tickets), whatever the cap: a
  sliding log would keep one entry per send (a 100,000/day cap = 100,000 members);
- a token bucket needs a continuous time base and refills between calls; with a virtual clock that
  jumps (tests, demo) a bucket refills by the jump, a window simply changes key.
The known cost: up to 2x the cap can go out across a window boundary (end of one window, start of the
next). Where that matters, add a per_minute cap next to the per_hour one; every window of a limit
applies.

Atomicity: inside one script call a message is admitted only if EVERY counter it needs has room, and
only then are all of them charged; a message refused by one limit charges nothing anywhere. Scripts
run one at a time in Redis, so concurrent batches (threads, workers) never admit past a cap.

Overflow is spread, not piled on the next window's first second: the script hands each refused
message a ticket in the refusing window (`o`), and ticket t of a cap C waits `t // C` windows more
than the next one. A 10x-cap backlog therefore comes back at C per window instead of all of it being
re-claimed and re-refused every window. Tickets are a hint, not a reservation: whoever is claimed
first in a window gets its room.

Keys carry a `{t<tenant id>}` hash tag, so each script call touches one cluster slot.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis
from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

from messaging.models import SendRateLimit
from outreach import clock

logger = logging.getLogger(__name__)

KEY_PREFIX = "outreach:rl"
WINDOWS: tuple[tuple[str, int], ...] = (("per_minute", 60), ("per_hour", 3600), ("per_day", 86400))
UNAVAILABLE_RETRY = dt.timedelta(minutes=1)  # Redis down: limited messages wait this long (fail closed)
KEY_GRACE_SECONDS = 60  # counters outlive their window by this much (real seconds)

# SendGrid's automated IP warmup: hourly sends per IP by the IP's age in days (day 1 first), as published
# (providers.md) for days 1-26. Days 27-41 are not published: extrapolated x1.4 a day (SendGrid's own
# growth rate), rounded. From day 42 (age 41 days) on: no warmup cap.
_PUBLISHED_WARMUP = (20, 28, 39, 55, 77, 108, 151, 211, 295, 413, 579, 810, 1000, 1587, 2222, 3111, 4356, 6098,
                     8583, 11953, 16734, 23427, 32798, 45917, 64284, 89998)
WARMUP_DAYS = 41
WARMUP_HOURLY_CAPS: tuple[int, ...] = _PUBLISHED_WARMUP + tuple(
    round(_PUBLISHED_WARMUP[-1] * 1.4 ** n) for n in range(1, WARMUP_DAYS - len(_PUBLISHED_WARMUP) + 1)
)

# KEYS: the counters of one tenant. ARGV: number of counters K, number of messages M; then per counter
# cap, ttl_ms, window end (epoch seconds); then per message: how many counters c, then their indexes.
# Returns 2 numbers per message: 0, 0 (admitted) or the refusing counter's index (the full one whose
# window ends last) and how many windows beyond the next one its overflow ticket says to wait.
_RESERVE_LUA = """
local K = tonumber(ARGV[1])
local M = tonumber(ARGV[2])
local cap, ttl, fin, used, over, used0, over0 = {}, {}, {}, {}, {}, {}, {}
local p = 3
for i = 1, K do
  cap[i] = tonumber(ARGV[p]); ttl[i] = ARGV[p + 1]; fin[i] = tonumber(ARGV[p + 2])
  p = p + 3
  local v = redis.call('HMGET', KEYS[i], 'n', 'o')
  used[i] = tonumber(v[1]) or 0
  over[i] = tonumber(v[2]) or 0
  used0[i] = used[i]
  over0[i] = over[i]
end
local out = {}
for m = 1, M do
  local c = tonumber(ARGV[p])
  local block, block_end = 0, -1
  for j = 1, c do
    local i = tonumber(ARGV[p + j])
    if used[i] >= cap[i] and fin[i] > block_end then
      block = i
      block_end = fin[i]
    end
  end
  if block == 0 then
    for j = 1, c do
      local i = tonumber(ARGV[p + j])
      used[i] = used[i] + 1
    end
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    local ahead = 0
    if cap[block] > 0 then ahead = math.floor(over[block] / cap[block]) end
    over[block] = over[block] + 1
    out[#out + 1] = block
    out[#out + 1] = ahead
  end
  p = p + c + 1
end
for i = 1, K do
  local changed = false
  if used[i] ~= used0[i] then
    redis.call('HINCRBY', KEYS[i], 'n', used[i] - used0[i])
    changed = true
  end
  if over[i] ~= over0[i] then
    redis.call('HINCRBY', KEYS[i], 'o', over[i] - over0[i])
    changed = true
  end
  if changed then redis.call('PEXPIRE', KEYS[i], ttl[i]) end
end
return out
"""

# Give back room reserved for messages that did not go out after all. A counter that has expired stays
# gone (HINCRBY would recreate it without a TTL). ARGV: one amount per key.
_RELEASE_LUA = """
for i = 1, #KEYS do
  local n = tonumber(redis.call('HGET', KEYS[i], 'n'))
  if n then redis.call('HSET', KEYS[i], 'n', math.max(0, n - tonumber(ARGV[i]))) end
end
return 1
"""


class _Script:
    """A Lua script run with EVALSHA; SCRIPT LOAD only when the server answers NOSCRIPT (first use
    after a Redis restart). redis-py's own Script object would add a SCRIPT EXISTS round trip to
    every pipeline."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def load(self, client) -> None:
        loaded = client.script_load(self.source)
        assert loaded == self.sha, "Redis computed another SHA1 for the script"


_RESERVE = _Script(_RESERVE_LUA)
_RELEASE = _Script(_RELEASE_LUA)


@functools.lru_cache(maxsize=4)
def _redis(url: str):
    # Short timeouts: a stuck Redis must not stall a delivery batch (it fails closed instead).
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _redis_client():
    return _redis(settings.REDIS_URL)


def _pipeline(client, script: _Script, calls: Sequence[tuple[list[str], list]]) -> list:
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    return pipe.execute(raise_on_error=False)


def _run_pipelined(client, script: _Script, calls: Sequence[tuple[list[str], list]]) -> list:
    """Every call in one pipeline (one round trip). Calls answered NOSCRIPT did not run: load the
    script and run those (only those: the others ran, and must not run twice)."""
    results = _pipeline(client, script, calls)
    retry = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if retry:
        script.load(client)
        for i, result in zip(retry, _pipeline(client, script, [calls[i] for i in retry]), strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


# --------------------------------------------------------------------------------------------
# The limits of a tenant (small query, cached a few seconds in-process)
# --------------------------------------------------------------------------------------------

Caps = tuple[tuple[int, int], ...]  # ((window seconds, cap), ...)


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's limits by (scope, normalised key)."""

    by_scope_key: dict[tuple[str, str], Caps] = field(default_factory=dict)

    def caps(self, scope: str, key: str) -> Caps:
        return self.by_scope_key.get((scope, key), ())

    def __bool__(self) -> bool:
        return bool(self.by_scope_key)


_NO_LIMITS = TenantLimits()
_cache: dict[int, tuple[float, TenantLimits]] = {}


def send_rate_limits_cache_clear() -> None:
    """Forget cached limits (tests; the cache otherwise expires by itself within seconds)."""
    _cache.clear()


def _normalise_key(key: str) -> str:
    return key.strip().lower()


def recipient_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() if "@" in address else ""


def send_rate_limits_for_tenants(*, tenant_ids: Iterable[int]) -> dict[int, TenantLimits]:
    """The configured limits of these tenants: one query for those not cached. The cache lasts
    SEND_RATE_LIMITS_CACHE_SECONDS (an admin edit is enforced within that long)."""
    ttl = float(settings.SEND_RATE_LIMITS_CACHE_SECONDS)
    now = time.monotonic()
    found: dict[int, TenantLimits] = {}
    missing: list[int] = []
    for tenant_id in set(tenant_ids):
        cached = _cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            found[tenant_id] = cached[1]
        else:
            missing.append(tenant_id)
    if missing:
        loaded: dict[int, dict[tuple[str, str], Caps]] = {tenant_id: {} for tenant_id in missing}
        rows = SendRateLimit.objects.filter(tenant_id__in=missing).values_list(
            "tenant_id", "scope", "key", "per_minute", "per_hour", "per_day")
        for tenant_id, scope, key, per_minute, per_hour, per_day in rows:
            caps = tuple((seconds, cap) for (_, seconds), cap in zip(WINDOWS, (per_minute, per_hour, per_day),
                                                                       strict=True) if cap is not None)
            if caps:
                loaded[tenant_id][(scope, _normalise_key(key))] = caps
        for tenant_id, by_scope_key in loaded.items():
            limits = TenantLimits(by_scope_key) if by_scope_key else _NO_LIMITS
            found[tenant_id] = limits
            if ttl > 0:
                _cache[tenant_id] = (now + ttl, limits)
    return found


def warmup_hourly_cap(*, started_on: dt.date, today: dt.date) -> int | None:
    """SendGrid's warmup cap for an IP whose warmup started on `started_on`; None once warmed up.
    A start date in the future counts as day 1 (the most careful cap)."""
    age_days = max((today - started_on).days, 0)
    return WARMUP_HOURLY_CAPS[age_days] if age_days < len(WARMUP_HOURLY_CAPS) else None


# --------------------------------------------------------------------------------------------
# Reserve / release
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateLimitCandidate:
    """A claimed message that passed policy, as the limiter needs it."""

    message_id: int
    tenant_id: int
    sender_email: str
    to_address: str
    warmup_started_on: dt.date | None = None


@dataclass(frozen=True)
class Deferral:
    not_before: dt.datetime
    reason: str  # "rate_limited:<scope>:<key>" (scope tenant, sender, recipient_domain, warmup)


@dataclass
class RateLimitDecision:
    allowed: list[int] = field(default_factory=list)
    deferred: dict[int, Deferral] = field(default_factory=dict)
    # message id -> (tenant id, counter keys it was charged on), for send_rate_limits_release
    charged: dict[int, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    redis_calls: int = 0  # round trips made (0 when no candidate had a limit)


@dataclass(frozen=True)
class _Counter:
    key: str
    cap: int
    window_seconds: int
    window_end: dt.datetime
    reason: str


class _TenantCall:
    """The counters and messages of one tenant: one script call."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.counters: list[_Counter] = []
        self.index: dict[str, int] = {}  # counter key -> 1-based index in the script
        self.messages: list[tuple[int, list[int]]] = []

    def add(self, message_id: int, counters: list[_Counter]) -> None:
        indexes = []
        for counter in counters:
            i = self.index.get(counter.key)
            if i is None:
                self.counters.append(counter)
                i = self.index[counter.key] = len(self.counters)
            indexes.append(i)
        self.messages.append((message_id, indexes))

    def script_call(self) -> tuple[list[str], list]:
        args: list = [len(self.counters), len(self.messages)]
        for counter in self.counters:
            ttl_ms = int((clock.real_seconds(counter.window_seconds) + KEY_GRACE_SECONDS) * 1000)
            args += [counter.cap, ttl_ms, int(counter.window_end.timestamp())]
        for _, indexes in self.messages:
            args.append(len(indexes))
            args += indexes
        return [c.key for c in self.counters], args


def _window(now_ts: float, seconds: int) -> tuple[int, dt.datetime]:
    start = int(now_ts // seconds) * seconds
    return start, dt.datetime.fromtimestamp(start + seconds, dt.UTC)


def _counters(*, tenant_id: int, scope: str, key: str, caps: Caps, now_ts: float,
              reason_key: str | None = None) -> list[_Counter]:
    reason = f"rate_limited:{scope}:{key if reason_key is None else reason_key}"
    out = []
    for seconds, cap in caps:
        start, end = _window(now_ts, seconds)
        out.append(_Counter(key=f"{KEY_PREFIX}:{{t{tenant_id}}}:{scope}:{key}:{seconds}:{start}", cap=cap,
                            window_seconds=seconds, window_end=end, reason=reason))
    return out


class _CounterPlan:
    """Which counters each candidate touches, grouped into one script call per tenant."""

    def __init__(self, *, limits: dict[int, TenantLimits], now: dt.datetime) -> None:
        self.limits = limits
        self.now = now
        self.now_ts = now.timestamp()
        self.calls: dict[int, _TenantCall] = {}
        self.unlimited: set[int] = set()  # message ids no limit applies to
        self._memo: dict[tuple[int, str, str], list[_Counter]] = {}

    def _counters_for(self, tenant_id: int, scope: str, key: str, caps: Caps) -> list[_Counter]:
        memo_key = (tenant_id, scope, key)
        found = self._memo.get(memo_key)
        if found is None:
            found = self._memo[memo_key] = _counters(tenant_id=tenant_id, scope=scope, key=key, caps=caps,
                                                     now_ts=self.now_ts)
        return found

    def _candidate_counters(self, candidate: RateLimitCandidate) -> list[_Counter]:
        tenant_limits = self.limits.get(candidate.tenant_id, _NO_LIMITS)
        counters: list[_Counter] = []
        if tenant_limits:
            sender = candidate.sender_email.strip().lower()
            domain = recipient_domain(candidate.to_address)
            for scope, key in (("tenant", ""), ("sender", sender), ("recipient_domain", domain)):
                caps = tenant_limits.caps(scope, key)
                if caps:
                    counters += self._counters_for(candidate.tenant_id, scope, key, caps)
        if candidate.warmup_started_on is not None:
            cap = warmup_hourly_cap(started_on=candidate.warmup_started_on, today=self.now.date())
            if cap is not None:
                counters += self._counters_for(candidate.tenant_id, "warmup", candidate.sender_email.strip().lower(),
                                               ((3600, cap),))
        return counters

    def add(self, candidate: RateLimitCandidate) -> None:
        counters = self._candidate_counters(candidate)
        if not counters:
            self.unlimited.add(candidate.message_id)
            return
        call = self.calls.get(candidate.tenant_id)
        if call is None:
            call = self.calls[candidate.tenant_id] = _TenantCall(candidate.tenant_id)
        call.add(candidate.message_id, counters)


def _record_results(decision: RateLimitDecision, ordered: list[_TenantCall], results: list,
                    admitted: set[int]) -> None:
    """Admitted messages are charged their counters; the others deferred to when their window has room."""
    for call, flat in zip(ordered, results, strict=True):
        for position, (message_id, indexes) in enumerate(call.messages):
            block, ahead = int(flat[2 * position]), int(flat[2 * position + 1])
            if block == 0:
                admitted.add(message_id)
                decision.charged[message_id] = (call.tenant_id, tuple(call.counters[i - 1].key for i in indexes))
            else:
                counter = call.counters[block - 1]
                not_before = counter.window_end + dt.timedelta(seconds=counter.window_seconds * ahead)
                decision.deferred[message_id] = Deferral(not_before, counter.reason)


def _reserve_in_redis(decision: RateLimitDecision, ordered: list[_TenantCall], *, now: dt.datetime,
                      admitted: set[int]) -> None:
    try:
        results = _run_pipelined(_redis_client(), _RESERVE, [call.script_call() for call in ordered])
        decision.redis_calls = 1
    except RedisError:
        logger.exception("rate limiter unavailable: %d limited messages deferred",
                         sum(len(c.messages) for c in ordered))
        for call in ordered:
            for message_id, _ in call.messages:
                decision.deferred[message_id] = Deferral(now + UNAVAILABLE_RETRY, "rate_limited:unavailable")
        return
    _record_results(decision, ordered, results, admitted)


def send_rate_limits_reserve(*, candidates: Sequence[RateLimitCandidate],
                             now: dt.datetime | None = None) -> RateLimitDecision:
    """Decide for a batch which messages may go now (their room is reserved) and when the others may.

    Candidates are admitted in the order given (oldest first, as delivery passes them). Messages no
    limit applies to are allowed without touching Redis; with no limits at all there is no Redis call.
    If Redis cannot be reached, limited messages are deferred UNAVAILABLE_RETRY (fail closed: sending
    over a cap can cost a sender's reputation for weeks, waiting a minute costs little).
    """
    decision = RateLimitDecision()
    if not candidates:
        return decision
    now = now or clock.now()
    plan = _CounterPlan(limits=send_rate_limits_for_tenants(tenant_ids={c.tenant_id for c in candidates}), now=now)
    for candidate in candidates:
        plan.add(candidate)
    admitted: set[int] = set(plan.unlimited)
    if plan.calls:
        _reserve_in_redis(decision, list(plan.calls.values()), now=now, admitted=admitted)
    decision.allowed = [c.message_id for c in candidates if c.message_id in admitted]
    return decision


def send_rate_limits_release(*, decision: RateLimitDecision, message_ids: Iterable[int]) -> None:
    """Give back the room reserved for admitted messages that did not go out (a 429 or 5xx stopped the
    batch, SendGrid refused them). One round trip; a failure only leaves the caps a little tighter."""
    by_tenant: dict[int, dict[str, int]] = {}
    for message_id in message_ids:
        charged = decision.charged.pop(message_id, None)
        if charged is None:
            continue
        tenant_id, keys = charged
        amounts = by_tenant.setdefault(tenant_id, {})
        for key in keys:
            amounts[key] = amounts.get(key, 0) + 1
    if not by_tenant:
        return
    calls = [(list(amounts), list(amounts.values())) for amounts in by_tenant.values()]
    try:
        _run_pipelined(_redis_client(), _RELEASE, calls)
    except RedisError:
        logger.warning("could not give back rate-limit room of %d counters", sum(len(k) for k, _ in calls))


def send_rate_limit_counters_reset() -> int:
    """Delete every rate-limit counter (tests, benchmarks; an operator lifting a stuck window)."""
    client = _redis_client()
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    return len(keys)
