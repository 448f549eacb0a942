"""The provider outage breaker: a SendGrid outage pauses sending instead of failing mail.

A per-batch breaker (`outcomes.Breaker`) already stops one batch after a 5xx. Across batches and workers
nothing remembered the outage: every batch spent one request (and one attempt of its first message) on it,
and after 5 attempts (1-2-4-8 min) those messages failed for good, ending their enrolments. So the state
of the provider is kept here, in Redis (every worker sees it), clock time throughout:

    closed --SENDGRID_OUTAGE_THRESHOLD consecutive 5xx / connection failures--> open
    open   --probe time reached: ONE batch may probe (a Redis lock)----------> half-open (that batch)
    probe  --the provider answers (any 202)---------------------------------> closed: sending resumes
    probe  --5xx / connection failure again---------------------------------> open, next probe later

- While open, a batch sends nothing: every message is held `provider_outage` until the next probe time,
  re-armed like any hold, with no attempt counted and nothing failed. A 5xx answered while open (a probe,
  or a request already in flight) is held the same way, its attempt undone.
- The probe is the batch's first request (delivery sends it alone, before any other), so a half-open
  breaker costs one request, not a window of them. Probes back off from SENDGRID_OUTAGE_PROBE_SECONDS,
  doubling up to SENDGRID_OUTAGE_PROBE_MAX_SECONDS.
- Opening emits the reserved outgoing webhook `sender.paused` for the tenants and senders whose mail the
  opening batch held, with the reason and the next probe time.
- Redis unreachable: the breaker reads as closed and records nothing (the per-batch breaker still holds
  the rest of a failing batch, and the send rate limiter, which fails closed, stops sending anyway).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from outreach import clock

logger = logging.getLogger(__name__)

PROVIDER = "sendgrid"
_KEY = f"messaging:outage:{PROVIDER}"

# KEYS[1] the breaker hash. ARGV: now, threshold, first probe wait, longest probe wait, error text.
# Returns {opened now (0/1), open (0/1), probe_at}.
_FAILURE_LUA = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local now = tonumber(ARGV[1])
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local probe_at = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
  if now >= probe_at then
    local probes = redis.call('HINCRBY', KEYS[1], 'probes', 1)
    probe_at = now + math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ probes)
    redis.call('HSET', KEYS[1], 'probe_at', probe_at, 'last_error', ARGV[5], 'probing_until', 0)
  end
  return {0, 1, tostring(probe_at)}
end
if failures >= tonumber(ARGV[2]) then
  local probe_at = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'probes', 0, 'probe_at', probe_at,
             'last_error', ARGV[5])
  return {1, 1, tostring(probe_at)}
end
return {0, 0, '0'}
"""

# KEYS[1] the breaker hash. ARGV: now, how long one probe may take, the wait of a batch that finds a probe
# running. Returns {'send' | 'probe' | 'hold', hold until}. The probe slot is a field in clock time (not a
# Redis TTL), like everything else here: one probing batch at a time, for at most one request's time.
_GATE_LUA = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {'send', '0'} end
local now = tonumber(ARGV[1])
local probe_at = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
if now < probe_at then return {'hold', tostring(probe_at)} end
if tonumber(redis.call('HGET', KEYS[1], 'probing_until') or '0') > now then
  return {'hold', tostring(now + tonumber(ARGV[3]))}
end
redis.call('HSET', KEYS[1], 'probing_until', now + tonumber(ARGV[2]))
return {'probe', '0'}
"""

# Returns the state it closed from ('' when there was nothing to reset).
_SUCCESS_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if state == 'open' or failures > 0 then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'probes', 0, 'probing_until', 0,
             'closed_at', ARGV[1])
  return state or 'closed'
end
return ''
"""


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def _at(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclasses.dataclass(frozen=True)
class Gate:
    """What a batch may do now: send (`hold_until` None; `probe` when it is the half-open probe), or hold
    everything until `hold_until`."""
    hold_until: dt.datetime | None = None
    probe: bool = False


@dataclasses.dataclass(frozen=True)
class Failure:
    """A 5xx / connection failure recorded: whether the breaker is (now) open, since this one, and until when."""
    open: bool
    opened_now: bool = False
    probe_at: dt.datetime | None = None


def outage_gate() -> Gate:
    """Asked once per batch before any request: closed -> send; open -> hold, or probe once it is time."""
    now = clock.now()
    try:
        verdict, until = _redis().eval(_GATE_LUA, 1, _KEY, now.timestamp(),
                                       settings.SENDGRID_REQUEST_TIMEOUT_SECONDS + 5,
                                       settings.SENDGRID_OUTAGE_PROBE_SECONDS)
    except RedisError:
        logger.warning("outage breaker unreadable (Redis); treated as closed", exc_info=True)
        return Gate()
    if verdict == b"hold":
        return Gate(hold_until=_at(float(until)))
    return Gate(probe=verdict == b"probe")


def outage_record_failure(error: str) -> Failure:
    """One more consecutive 5xx / connection failure; may open the breaker (or push an open one's probe out)."""
    try:
        opened, is_open, probe_at = _redis().eval(
            _FAILURE_LUA, 1, _KEY, clock.now().timestamp(), settings.SENDGRID_OUTAGE_THRESHOLD,
            settings.SENDGRID_OUTAGE_PROBE_SECONDS, settings.SENDGRID_OUTAGE_PROBE_MAX_SECONDS, error[:500])
    except RedisError:
        logger.warning("outage breaker not updated (Redis)", exc_info=True)
        return Failure(open=False)
    if opened:
        logger.error("SendGrid outage: breaker opened after %d consecutive failures; sending paused, next "
                     "probe at %s (%s)", settings.SENDGRID_OUTAGE_THRESHOLD, _at(float(probe_at)), error[:200])
    return Failure(open=bool(is_open), opened_now=bool(opened), probe_at=_at(float(probe_at)) if is_open else None)


def outage_record_success() -> None:
    """The provider answered (a 202): reset the count; an open breaker closes and sending resumes."""
    try:
        closed_from = _redis().eval(_SUCCESS_LUA, 1, _KEY, clock.now().timestamp())
    except RedisError:
        logger.warning("outage breaker not updated (Redis)", exc_info=True)
        return
    if closed_from == b"open":
        logger.warning("SendGrid answers again: outage breaker closed, sending resumes")


def outage_state() -> dict[str, Any]:
    """The breaker as the operator console shows it: state, consecutive failures, since when, next probe."""
    try:
        raw = {k.decode(): v.decode() for k, v in _redis().hgetall(_KEY).items()}
    except RedisError:
        return {"state": "unknown (Redis unreachable)", "failures": 0, "opened_at": None, "probe_at": None,
                "last_error": ""}
    is_open = raw.get("state") == "open"
    return {
        "state": "open" if is_open else "closed",
        "failures": int(raw.get("failures") or 0),
        "opened_at": _at(float(raw["opened_at"])) if is_open and raw.get("opened_at") else None,
        "probe_at": _at(float(raw["probe_at"])) if is_open and raw.get("probe_at") else None,
        "last_error": raw.get("last_error", "") if is_open else "",
    }


def outage_reset() -> None:
    """Forget the breaker (tests, and an operator who knows the provider is back)."""
    _redis().delete(_KEY)
