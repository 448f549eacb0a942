"""The AI client: the real openai library against the stub over real HTTP (nothing patched)."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from outreach.ai.client import (
    KEY_PREFIX,
    AIBusy,
    AIError,
    complete_json,
    estimate_cost_usd,
    redis_client,
    tenant_slot_release,
    tenant_slot_try_acquire,
)
from outreach.ai.models import AICall
from outreach.ai.selectors import ai_usage_by_tenant, ai_usage_for_tenant
from simulators.openai_stub.server import chat_json, chat_text, error, rate_limited, server_error

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["answer"],
          "properties": {"answer": {"type": "string"}}}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def _call(tenant, purpose: str = "test"):
    return complete_json(tenant=tenant, purpose=purpose, messages=MESSAGES, schema=SCHEMA, schema_name="answer")


def test_structured_output_request_and_token_accounting(stub, tenant):
    stub.enqueue(chat_json({"answer": "yes"}, prompt_tokens=1200, completion_tokens=300))

    result = _call(tenant, purpose="plan")

    assert result.data == {"answer": "yes"}
    sent = stub.requests[0]
    assert sent.headers["authorization"] == "Bearer sk-stub-test"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
    call = AICall.objects.get(pk=result.ai_call_id)
    assert (call.tenant_id, call.purpose, call.status) == (tenant.pk, "plan", "ok")
    assert (call.prompt_tokens, call.completion_tokens) == (1200, 300)
    # gpt-4o-mini: $0.15 / $0.60 per million tokens.
    assert call.cost_usd == Decimal("0.000360")


def test_429_with_retry_after_is_retried_honouring_the_header(stub, tenant):
    stub.enqueue(rate_limited(retry_after="0"), rate_limited(retry_after=None, retry_after_ms="30"),
                 chat_json({"answer": "ok"}))

    result = _call(tenant)

    assert result.data == {"answer": "ok"}
    assert result.attempts == 3
    assert result.retry_delays == (0.0, 0.03)  # exactly what the server asked for, not our backoff
    statuses = list(AICall.objects.filter(tenant=tenant).order_by("id").values_list("status", flat=True))
    assert statuses == ["rate_limited", "rate_limited", "ok"]
    assert redis_client().zcard(f"{KEY_PREFIX}:sem:{tenant.pk}") == 0  # every attempt gave its slot back


def test_500_is_retried_with_backoff_then_succeeds(stub, tenant):
    stub.enqueue(server_error(500), server_error(503), chat_json({"answer": "ok"}))

    result = _call(tenant)

    assert result.attempts == 3 and len(stub.requests) == 3
    assert all(0 <= d <= 0.05 for d in result.retry_delays)  # AI_BACKOFF_MAX_SECONDS in the fixture


def test_retries_are_bounded(stub, tenant, settings):
    settings.AI_MAX_ATTEMPTS = 3
    stub.enqueue(*(server_error() for _ in range(5)))

    with pytest.raises(AIError) as exc_info:
        _call(tenant)

    assert exc_info.value.kind == "server"
    assert len(stub.requests) == 3
    assert AICall.objects.filter(tenant=tenant, status="error").count() == 3


def test_retry_after_longer_than_the_cap_fails_fast_with_the_wait(stub, tenant):
    stub.enqueue(rate_limited(retry_after="120"), chat_json({"answer": "never reached"}))

    with pytest.raises(AIError) as exc_info:
        _call(tenant)

    assert exc_info.value.kind == "rate_limited" and exc_info.value.retry_after == 120
    assert len(stub.requests) == 1


def test_client_error_is_not_retried(stub, tenant):
    stub.enqueue(error(400, "bad schema", error_type="invalid_request_error"), chat_json({"answer": "x"}))

    with pytest.raises(AIError) as exc_info:
        _call(tenant)

    assert exc_info.value.kind == "client"
    assert len(stub.requests) == 1


def test_refusal_and_non_json_content(stub, tenant):
    stub.enqueue(chat_text("", refusal="I can't help with that"), chat_text("not json at all"))

    with pytest.raises(AIError) as exc_info:
        _call(tenant)
    assert exc_info.value.kind == "refused"

    result = _call(tenant)
    assert result.data is None and "not valid JSON" in result.parse_error


def test_disabled_without_a_key(settings, tenant):
    settings.OPENAI_API_KEY = ""
    with pytest.raises(AIError) as exc_info:
        _call(tenant)
    assert exc_info.value.kind == "disabled"


def test_token_totals_per_tenant(stub, tenant, other_tenant):
    stub.enqueue(
        chat_json({"answer": "a"}, prompt_tokens=100, completion_tokens=10),
        server_error(),
        chat_json({"answer": "b"}, prompt_tokens=200, completion_tokens=20),
        chat_json({"answer": "c"}, prompt_tokens=7, completion_tokens=3),
    )
    _call(tenant)
    _call(tenant)  # one 500 then success: two rows, tokens only on the success
    _call(other_tenant)

    usage = ai_usage_for_tenant(tenant_id=tenant.pk)
    assert usage["calls"] == 3
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (300, 30)
    assert usage["cost_usd"] == estimate_cost_usd(model="gpt-4o-mini", prompt_tokens=100, completion_tokens=10) + \
        estimate_cost_usd(model="gpt-4o-mini", prompt_tokens=200, completion_tokens=20)
    assert ai_usage_for_tenant(tenant_id=other_tenant.pk)["prompt_tokens"] == 7
    by_tenant = ai_usage_by_tenant()
    assert by_tenant[tenant.pk]["completion_tokens"] == 30 and by_tenant[other_tenant.pk]["calls"] == 1


def test_cost_table_matches_dated_snapshots_and_prices_unknown_models_high():
    assert estimate_cost_usd(model="gpt-4o-mini-2024-07-18", prompt_tokens=1_000_000, completion_tokens=0) == \
        Decimal("0.150000")
    assert estimate_cost_usd(model="gpt-4o-2024-08-06", prompt_tokens=1_000_000, completion_tokens=0) == \
        Decimal("2.500000")
    assert estimate_cost_usd(model="some-local-llm", prompt_tokens=0, completion_tokens=1_000_000) == \
        Decimal("10.000000")


def test_rate_cap_refuses_a_burst_beyond_it_without_calling_the_api(stub, settings, tenant, other_tenant):
    settings.AI_TENANT_BURST = 3
    settings.AI_TENANT_RATE_PER_MINUTE = 0.01  # effectively no refill during the test
    stub.enqueue(*(chat_json({"answer": str(i)}) for i in range(10)))

    for _ in range(3):
        _call(tenant)
    with pytest.raises(AIBusy) as exc_info:
        _call(tenant)

    assert len(stub.requests) == 3  # the refused call never reached the API
    assert exc_info.value.retry_after > 60  # next token at 0.01/min is far away
    # The other tenant has its own bucket: one tenant's burst does not starve it.
    assert _call(other_tenant).data is not None
    assert len(stub.requests) == 4


def test_concurrency_cap_holds_calls_while_slots_are_taken(stub, settings, tenant, other_tenant):
    settings.AI_TENANT_CONCURRENCY = 2
    stub.enqueue(*(chat_json({"answer": str(i)}) for i in range(5)))
    held = [tenant_slot_try_acquire(tenant_id=tenant.pk, lease_seconds=60)[0] for _ in range(2)]
    assert all(held)

    with pytest.raises(AIBusy):
        _call(tenant)
    assert stub.requests == []
    assert _call(other_tenant).data == {"answer": "0"}

    tenant_slot_release(held[0])
    assert _call(tenant).data == {"answer": "1"}
    tenant_slot_release(held[1])


def test_a_dead_workers_slot_expires_with_its_lease(clean_ai_redis, settings):
    settings.AI_TENANT_CONCURRENCY = 1
    tenant_id = 987_654
    slot, _ = tenant_slot_try_acquire(tenant_id=tenant_id, lease_seconds=0.5)
    assert slot is not None
    refused, wait = tenant_slot_try_acquire(tenant_id=tenant_id, lease_seconds=60)
    assert refused is None and 0 < wait <= 0.5
    time.sleep(0.6)  # never released: the lease runs out
    again, _ = tenant_slot_try_acquire(tenant_id=tenant_id, lease_seconds=60)
    assert again is not None


def test_waiting_caller_gets_a_token_once_the_bucket_refills(stub, settings, tenant):
    settings.AI_TENANT_BURST = 1
    settings.AI_TENANT_RATE_PER_MINUTE = 1200  # one token per 50 ms
    settings.AI_ACQUIRE_WAIT_SECONDS = 2.0
    stub.enqueue(chat_json({"answer": "1"}), chat_json({"answer": "2"}))

    assert _call(tenant).data == {"answer": "1"}
    assert _call(tenant).data == {"answer": "2"}  # delayed, not refused
