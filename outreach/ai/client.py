"""The one AI client: the official `openai` library, with our retries, per-tenant caps and accounting.

Every model call in the project goes through `complete_json`:

- base URL, key, model and timeout come from settings (OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL /
  OPENAI_TIMEOUT_SECONDS), so tests and the demo point it at the local stub;
- structured output: Chat Completions with `response_format={"type": "json_schema", ...}`. Chat
  Completions rather than the Responses API because every OpenAI-compatible server (our stub, vLLM,
  Ollama, Azure) speaks it;
- retries are ours, not the library's (`max_retries=0`): bounded attempts with exponential backoff and
  jitter on 429, 5xx, timeouts and connection errors, honouring `Retry-After` / `retry-after-ms`. A
  Retry-After longer than AI_RETRY_AFTER_MAX_SECONDS is not slept in a worker: the call fails with
  `AIError(kind="rate_limited", retry_after=...)` and the task decides (re-enqueue or fall back);
- a per-tenant cap in Redis before every HTTP attempt: a token bucket (requests per minute, with a burst)
  and a semaphore with expiring slots (concurrent requests), so one tenant's 100k-lead import cannot
  take every worker's AI capacity from the others. A crashed worker's slot expires with its lease;
- every HTTP attempt is one `AICall` row: tenant, purpose, model, tokens from `usage`, estimated cost
  from the price table, duration, status.
"""
from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import logging
import random
import time
import uuid
from decimal import Decimal
from typing import Any

import openai
from django.conf import settings

logger = logging.getLogger(__name__)


def ai_enabled() -> bool:
    """True when a key is configured; without one the deterministic planner and classifier answer."""
    return bool(settings.OPENAI_API_KEY)


class AIError(Exception):
    """A model call that did not produce a usable answer.

    kind: "disabled", "busy" (our per-tenant cap refused), "rate_limited" (the provider's 429 outlasted our
    retries), "server" (5xx), "timeout", "connection", "client" (a 4xx we cannot fix by retrying),
    "refused" (the model declined), "bad_output" (not the JSON we asked for), "budget" (the tenant's monthly
    AI budget is spent: nothing was sent).
    """

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class AIBusy(AIError):
    """Our own per-tenant cap refused the call (nothing was sent); try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, kind="busy", retry_after=retry_after)


@dataclasses.dataclass(frozen=True)
class AIResult:
    data: Any  # the parsed JSON answer; None when the content was not JSON (see parse_error)
    content: str
    parse_error: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    ai_call_id: int | None
    attempts: int
    retry_delays: tuple[float, ...]  # seconds slept before each retry (for tests and logs)


# --- prices -------------------------------------------------------------------------------------------

# USD per million tokens (input, output), public list prices. An estimate for budgeting, not an invoice.
# Matched by longest prefix, so dated snapshots ("gpt-4o-mini-2024-07-18") find their family.
# Override or extend with settings.AI_MODEL_PRICES (same shape).
MODEL_PRICES_USD_PER_MTOK: dict[str, tuple[str, str]] = {
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4o": ("2.50", "10.00"),
    "gpt-4.1-nano": ("0.10", "0.40"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "gpt-4.1": ("2.00", "8.00"),
    "gpt-5-nano": ("0.05", "0.40"),
    "gpt-5-mini": ("0.25", "2.00"),
    "gpt-5": ("1.25", "10.00"),
    "o4-mini": ("1.10", "4.40"),
}
# Unknown models are costed like gpt-4o (on the high side) so a budget alarm errs towards firing.
DEFAULT_PRICE_USD_PER_MTOK = ("2.50", "10.00")


def _price_table() -> dict[str, tuple[str, str]]:
    return {**MODEL_PRICES_USD_PER_MTOK, **settings.AI_MODEL_PRICES}


def estimate_cost_usd(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    table = _price_table()
    match = max((name for name in table if model.startswith(name)), key=len, default=None)
    price_in, price_out = table[match] if match else DEFAULT_PRICE_USD_PER_MTOK
    cost = (Decimal(prompt_tokens) * Decimal(price_in) + Decimal(completion_tokens) * Decimal(price_out)) / Decimal(
        1_000_000
    )
    return cost.quantize(Decimal("0.000001"))


# --- the openai client --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _openai_client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    # max_retries=0: the library's own retries would bypass our per-tenant caps and accounting.
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


def get_openai_client() -> openai.OpenAI:
    return _openai_client(settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY, settings.OPENAI_TIMEOUT_SECONDS)


# --- per-tenant caps (Redis) --------------------------------------------------------------------------

# Token bucket: KEYS[1] hash {tokens, ts_ms}; ARGV rate_per_ms, burst. Uses the Redis server clock so every
# worker agrees. Returns {granted (0/1), wait_ms until one token is available}.
_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  granted = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 60000)
return {granted, wait}
"""

# Semaphore with expiring slots: KEYS[1] zset member=slot id, score=lease expiry (ms). ARGV limit,
# lease_ms, slot id. Expired slots (a worker that died holding one) are reclaimed on every acquire.
# Returns {granted, wait_ms until the earliest lease ends}.
_SEMAPHORE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(first[2]) - now)}
"""

KEY_PREFIX = "outreach:ai"


@functools.lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


def redis_client():
    """The Redis connection of the AI caps (and of campaigns' generation locks): one pool per REDIS_URL."""
    return _redis(settings.REDIS_URL)


def _tenant_key(tenant_id: int | None) -> str:
    return str(tenant_id) if tenant_id is not None else "none"


@dataclasses.dataclass(frozen=True)
class TenantCaps:
    concurrency: int
    rate_per_minute: float
    burst: int


def tenant_caps(tenant_id: int | None) -> TenantCaps:
    """The caps for a tenant. One setting for all tenants today; per-tenant overrides in AI_TENANT_CAPS."""
    override = settings.AI_TENANT_CAPS.get(tenant_id, {})
    return TenantCaps(
        concurrency=int(override.get("concurrency", settings.AI_TENANT_CONCURRENCY)),
        rate_per_minute=float(override.get("rate_per_minute", settings.AI_TENANT_RATE_PER_MINUTE)),
        burst=int(override.get("burst", settings.AI_TENANT_BURST)),
    )


@dataclasses.dataclass(frozen=True)
class Slot:
    tenant_id: int | None
    slot_id: str


def tenant_slot_try_acquire(*, tenant_id: int | None, lease_seconds: float) -> tuple[Slot | None, float]:
    """One non-blocking attempt at the tenant's caps: (slot, 0) or (None, seconds to wait).

    The concurrency slot is taken first and the rate token second, so a refused rate check does not
    burn a slot; a refused slot does not burn a token either.
    """
    caps = tenant_caps(tenant_id)
    r = redis_client()
    key = _tenant_key(tenant_id)
    slot_id = uuid.uuid4().hex
    sem_key = f"{KEY_PREFIX}:sem:{key}"
    granted, wait_ms = r.eval(_SEMAPHORE_LUA, 1, sem_key, caps.concurrency, int(lease_seconds * 1000), slot_id)
    if not granted:
        return None, int(wait_ms) / 1000
    rate_per_ms = caps.rate_per_minute / 60_000
    granted, wait_ms = r.eval(_BUCKET_LUA, 1, f"{KEY_PREFIX}:bucket:{key}", repr(rate_per_ms), caps.burst)
    if not granted:
        r.zrem(sem_key, slot_id)
        return None, int(wait_ms) / 1000
    return Slot(tenant_id=tenant_id, slot_id=slot_id), 0.0


def tenant_slot_release(slot: Slot) -> None:
    redis_client().zrem(f"{KEY_PREFIX}:sem:{_tenant_key(slot.tenant_id)}", slot.slot_id)


def tenant_slot_acquire(*, tenant_id: int | None, lease_seconds: float, wait_seconds: float) -> Slot:
    """Wait up to `wait_seconds` for the tenant's caps, else raise AIBusy (nothing is sent)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        slot, wait = tenant_slot_try_acquire(tenant_id=tenant_id, lease_seconds=lease_seconds)
        if slot is not None:
            return slot
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AIBusy(f"AI capacity of tenant {tenant_id} is in use; retry in {wait:.1f}s", retry_after=wait)
        time.sleep(min(wait, remaining, 1.0))


# --- the call -----------------------------------------------------------------------------------------

_RETRYABLE_KINDS = {"rate_limited", "server", "timeout", "connection"}


def _retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _classify_exception(exc: Exception) -> tuple[str, float | None]:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", None
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limited", _retry_after_seconds(exc)
        if exc.status_code >= 500:
            return "server", _retry_after_seconds(exc)
        return "client", None
    return "client", None


def _backoff_seconds(attempt: int) -> float:
    base = settings.AI_BACKOFF_BASE_SECONDS
    cap = settings.AI_BACKOFF_MAX_SECONDS
    # Full jitter: spreads retries of many workers that failed at the same moment.
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


def complete_json(
    *,
    tenant: Any,
    purpose: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    schema_name: str,
    strict: bool = True,
    model: str | None = None,
    max_completion_tokens: int | None = None,
    temperature: float | None = None,
) -> AIResult:
    """Ask the model for a JSON answer matching `schema`; raises AIError when no answer came back.

    A reply that is not JSON is returned (data=None, parse_error set) rather than raised: for a plan it
    is one more validation error the repair round can show the model.
    """
    if not ai_enabled():
        raise AIError("no OPENAI_API_KEY configured", kind="disabled")
    from outreach.ai.budget import budget_refusal  # models: imported once the apps are ready, like services

    tenant_id = getattr(tenant, "pk", tenant)
    over_budget = budget_refusal(tenant_id=tenant_id)
    if over_budget:
        raise AIError(f"{purpose}: {over_budget}", kind="budget")
    model_name = model or settings.OPENAI_MODEL
    params = _request_params(model_name=model_name, messages=messages, schema=schema, schema_name=schema_name,
                             strict=strict, max_completion_tokens=max_completion_tokens, temperature=temperature)
    answer = _call_with_retries(tenant_id=tenant_id, purpose=purpose, model_name=model_name, params=params)
    return _result_of(answer, tenant_id=tenant_id, purpose=purpose, model_name=model_name)


def _request_params(*, model_name: str, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str,
                    strict: bool, max_completion_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    """The Chat Completions request: structured output by JSON schema, optional limits."""
    params: dict[str, Any] = {
        "model": model_name,
        "messages": messages,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": schema, "strict": strict},
        },
    }
    if max_completion_tokens is not None:
        params["max_completion_tokens"] = max_completion_tokens
    if temperature is not None:
        params["temperature"] = temperature
    return params


@dataclasses.dataclass(frozen=True)
class _Answer:
    """A completion that came back, with what it took to get it."""

    completion: Any
    duration_ms: int
    attempts: int
    delays: tuple[float, ...]


def _call_with_retries(*, tenant_id: int | None, purpose: str, model_name: str, params: dict[str, Any]) -> _Answer:
    """HTTP attempts under the tenant's caps until one answers; each failed attempt is one AICall row.

    Raises AIError when the failure is not retryable, the attempts are used up, or the provider asks for a
    wait longer than AI_RETRY_AFTER_MAX_SECONDS (not slept in a worker)."""
    max_attempts = max(1, settings.AI_MAX_ATTEMPTS)
    lease_seconds = settings.OPENAI_TIMEOUT_SECONDS + 10
    client = get_openai_client()
    delays: list[float] = []
    attempt = 0
    while True:
        attempt += 1
        slot = tenant_slot_acquire(tenant_id=tenant_id, lease_seconds=lease_seconds,
                                   wait_seconds=settings.AI_ACQUIRE_WAIT_SECONDS)
        started = time.monotonic()
        try:
            completion = client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            failure: openai.OpenAIError | None = exc
        else:
            failure = None
        finally:
            # Released before any backoff sleep: a waiting retry must not hold the tenant's slot.
            tenant_slot_release(slot)
        duration_ms = int((time.monotonic() - started) * 1000)
        if failure is None:
            return _Answer(completion=completion, duration_ms=duration_ms, attempts=attempt, delays=tuple(delays))
        delay = _after_failure(failure, tenant_id=tenant_id, purpose=purpose, model_name=model_name,
                               attempt=attempt, max_attempts=max_attempts, duration_ms=duration_ms)
        delays.append(delay)
        time.sleep(delay)


def _after_failure(exc: openai.OpenAIError, *, tenant_id: int | None, purpose: str, model_name: str, attempt: int,
                   max_attempts: int, duration_ms: int) -> float:
    """Record a failed attempt; the seconds to wait before the next one, or AIError when there is none."""
    from outreach.ai.services import ai_call_record

    kind, retry_after = _classify_exception(exc)
    ai_call_record(
        tenant_id=tenant_id, purpose=purpose, model=model_name,
        status="rate_limited" if kind == "rate_limited" else "error",
        duration_ms=duration_ms, error=f"{kind}: {exc}"[:2000],
    )
    if kind not in _RETRYABLE_KINDS or attempt >= max_attempts:
        raise AIError(f"{purpose}: {kind} after {attempt} attempt(s): {exc}", kind=kind,
                      retry_after=retry_after) from exc
    if retry_after is not None and retry_after > settings.AI_RETRY_AFTER_MAX_SECONDS:
        raise AIError(f"{purpose}: provider asks to wait {retry_after:.0f}s", kind=kind,
                      retry_after=retry_after) from exc
    delay = retry_after if retry_after is not None else _backoff_seconds(attempt)
    logger.info("AI %s attempt %d failed (%s); retrying in %.2fs", purpose, attempt, kind, delay)
    return delay


def _result_of(answer: _Answer, *, tenant_id: int | None, purpose: str, model_name: str) -> AIResult:
    """Account for the answer (one AICall row with tokens and cost) and parse its JSON."""
    from outreach.ai.services import ai_call_record

    usage = answer.completion.usage
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    # Cost by the model we asked for: a compatible server may echo any name back.
    cost = estimate_cost_usd(model=model_name, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    choices = answer.completion.choices
    message = choices[0].message if choices else None
    refusal = getattr(message, "refusal", None) if message else None
    content = (message.content or "") if message else ""
    call = ai_call_record(
        tenant_id=tenant_id, purpose=purpose, model=model_name, status="ok" if not refusal else "error",
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost,
        duration_ms=answer.duration_ms, error=f"refused: {refusal}"[:2000] if refusal else "",
    )
    if refusal:
        raise AIError(f"{purpose}: the model refused: {refusal}", kind="refused")
    data: Any = None
    parse_error: str | None = None
    try:
        data = json.loads(content)
    except ValueError as exc:
        parse_error = f"the answer is not valid JSON ({exc})"
    return AIResult(
        data=data, content=content, parse_error=parse_error, model=model_name, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, cost_usd=cost, ai_call_id=call.pk, attempts=answer.attempts,
        retry_delays=answer.delays,
    )
