"""Send rate limits at delivery: real Redis counters, real PostgreSQL, the SendGrid simulator over HTTP."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection

from campaigns.models import ScheduledAction
from campaigns.tests.factories import CampaignFactory, freeze_clock
from messaging import rate_limits
from messaging.delivery import outbound_messages_deliver
from messaging.models import OutboundMessage
from messaging.rate_limits import (
    RateLimitCandidate,
    send_rate_limit_counters_reset,
    send_rate_limits_cache_clear,
    send_rate_limits_reserve,
)
from messaging.tests import test_delivery
from messaging.tests.factories import EmailSenderIdentityFactory, SendRateLimitFactory, enrolled_message
from outreach.tenancy.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
sim = test_delivery.sim  # the SendGrid simulator fixture, shared rather than copied

START = dt.datetime(2030, 1, 7, 10, 15, tzinfo=dt.UTC)  # a Monday, mid-hour
NEXT_HOUR = dt.datetime(2030, 1, 7, 11, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clean_counters():
    """Counters are keyed by tenant id and window: a frozen clock reuses windows across runs."""
    send_rate_limit_counters_reset()
    send_rate_limits_cache_clear()
    yield
    send_rate_limit_counters_reset()
    send_rate_limits_cache_clear()


@pytest.fixture
def frozen(monkeypatch):
    return freeze_clock(monkeypatch, START)


def _messages(n: int, *, campaign=None, emails: list[str] | None = None) -> list[OutboundMessage]:
    """n queued outbox rows of one campaign (a new tenant, sender and campaign unless given)."""
    emails = emails or [None] * n
    first = enrolled_message(campaign=campaign, email=emails[0])
    campaign = first.contact_campaign.campaign
    return [first] + [enrolled_message(campaign=campaign, email=email) for email in emails[1:]]


def _send_action(message: OutboundMessage) -> ScheduledAction:
    return ScheduledAction.objects.get(outbound_message_id=message.id, kind="send")


def _candidate(n: int, *, tenant, sender: str = "rep@seller.example", to: str | None = None) -> RateLimitCandidate:
    return RateLimitCandidate(message_id=n, tenant_id=tenant.id, sender_email=sender,
                              to_address=to or f"c{n}@acme.example")


def _ids(messages) -> list[int]:
    return [m.id for m in messages]


# --- caps per scope, through delivery ---------------------------------------------------------------

def test_tenant_hourly_cap_of_n_sends_exactly_n_and_defers_the_rest_to_the_next_hour(sim, frozen):
    messages = _messages(5)
    SendRateLimitFactory(tenant=messages[0].tenant, scope="tenant", key="", per_hour=3)

    report = outbound_messages_deliver(outbound_message_ids=_ids(messages))

    assert report.sent == _ids(messages[:3])
    assert report.rate_limited == _ids(messages[3:])
    assert len(sim.messages()) == 3
    for message in messages[3:]:
        message.refresh_from_db()
        assert message.status == OutboundMessage.Status.QUEUED  # deferred: not failed, not dropped
        assert message.status_reason == "rate_limited:tenant:"
        assert message.attempts == 0 and message.next_attempt_at == NEXT_HOUR
        action = _send_action(message)
        assert action.status == "pending" and action.due_at == NEXT_HOUR


def test_deferred_messages_wait_for_their_window_and_then_go_out(sim, frozen):
    messages = _messages(4)
    SendRateLimitFactory(tenant=messages[0].tenant, scope="tenant", key="", per_hour=2)
    outbound_messages_deliver(outbound_message_ids=_ids(messages))
    deferred = messages[2:]
    assert [_send_action(m).due_at for m in deferred] == [NEXT_HOUR, NEXT_HOUR]

    frozen.advance(minutes=44)  # 10:59, same hour: handed over early (say a duplicate task), still no room
    early = outbound_messages_deliver(outbound_message_ids=_ids(deferred))
    assert early.sent == [] and early.rate_limited == _ids(deferred) and len(sim.messages()) == 2

    frozen.now = NEXT_HOUR
    late = outbound_messages_deliver(outbound_message_ids=_ids(deferred))

    assert late.sent == _ids(deferred)
    assert {r["email"] for m in sim.messages() for r in m["recipients"]} == {m.to_address for m in messages}


def test_sender_cap_holds_only_that_senders_messages(sim, frozen):
    tenant = TenantFactory()
    capped_sender = EmailSenderIdentityFactory(tenant=tenant)
    free_sender = EmailSenderIdentityFactory(tenant=tenant)
    capped = _messages(2, campaign=CampaignFactory(tenant=tenant, sender_identity=capped_sender))
    free = _messages(2, campaign=CampaignFactory(tenant=tenant, sender_identity=free_sender))
    # The key is matched case-insensitively.
    SendRateLimitFactory(tenant=tenant, scope="sender", key=capped_sender.from_email.upper(), per_hour=1)

    report = outbound_messages_deliver(outbound_message_ids=_ids(capped + free))

    assert report.sent == sorted([capped[0].id] + _ids(free))
    assert report.rate_limited == [capped[1].id]
    capped[1].refresh_from_db()
    assert capped[1].status_reason == f"rate_limited:sender:{capped_sender.from_email}"


def test_recipient_domain_cap_holds_only_mail_to_that_domain_of_that_tenant(sim, frozen):
    gmail = _messages(3, emails=["a@gmail.com", "b@GMAIL.com", "c@gmail.com"])
    tenant = gmail[0].tenant
    others = _messages(2, campaign=gmail[0].contact_campaign.campaign, emails=["d@acme.example", "e@acme.example"])
    other_tenant_gmail = _messages(2, emails=["f@gmail.com", "g@gmail.com"])
    SendRateLimitFactory(tenant=tenant, scope="recipient_domain", key="gmail.com", per_hour=2)

    report = outbound_messages_deliver(outbound_message_ids=_ids(gmail + others + other_tenant_gmail))

    assert report.rate_limited == [gmail[2].id]
    assert report.sent == sorted(_ids(gmail[:2] + others + other_tenant_gmail))
    gmail[2].refresh_from_db()
    assert gmail[2].status_reason == "rate_limited:recipient_domain:gmail.com"


# --- the limiter itself ---------------------------------------------------------------------------

def test_a_message_refused_by_one_limit_uses_none_of_the_other_limits_room(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=3)
    SendRateLimitFactory(tenant=tenant, scope="recipient_domain", key="gmail.com", per_hour=1)
    batch = [_candidate(1, tenant=tenant, to="x1@gmail.com"), _candidate(2, tenant=tenant, to="x2@gmail.com"),
             _candidate(3, tenant=tenant, to="x3@gmail.com"), _candidate(4, tenant=tenant),
             _candidate(5, tenant=tenant)]

    decision = send_rate_limits_reserve(candidates=batch)

    # 2 and 3 hit the gmail.com cap; had they taken tenant room, 5 would have been refused.
    assert decision.allowed == [1, 4, 5]
    assert {i: d.reason for i, d in decision.deferred.items()} == {
        2: "rate_limited:recipient_domain:gmail.com", 3: "rate_limited:recipient_domain:gmail.com"}
    # The tenant cap is now used up by exactly the three that were admitted.
    assert send_rate_limits_reserve(candidates=[_candidate(6, tenant=tenant)]).deferred[6].reason == \
        "rate_limited:tenant:"


def test_every_window_of_a_limit_applies_and_the_full_one_ending_last_sets_the_wait(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_minute=2, per_hour=4)

    first = send_rate_limits_reserve(candidates=[_candidate(i, tenant=tenant) for i in (1, 2, 3)])
    assert first.allowed == [1, 2]
    assert first.deferred[3].not_before == START + dt.timedelta(minutes=1)  # only the minute is full

    frozen.advance(minutes=1)
    second = send_rate_limits_reserve(candidates=[_candidate(i, tenant=tenant) for i in (3, 4, 5)])
    assert second.allowed == [3, 4]
    # Minute and hour are both full now: waiting for the next minute would only be refused again.
    assert second.deferred[5].not_before == NEXT_HOUR


def test_a_backlog_over_the_cap_is_spread_over_the_following_windows(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=2)

    decision = send_rate_limits_reserve(candidates=[_candidate(i, tenant=tenant) for i in range(1, 8)])

    assert decision.allowed == [1, 2]
    hours = [decision.deferred[i].not_before for i in range(3, 8)]
    assert hours == [NEXT_HOUR, NEXT_HOUR, NEXT_HOUR + dt.timedelta(hours=1), NEXT_HOUR + dt.timedelta(hours=1),
                     NEXT_HOUR + dt.timedelta(hours=2)]


def test_daily_windows_follow_the_clock_not_redis_time(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=None, per_day=1)
    assert send_rate_limits_reserve(candidates=[_candidate(1, tenant=tenant)]).allowed == [1]
    refused = send_rate_limits_reserve(candidates=[_candidate(2, tenant=tenant)])
    assert refused.deferred[2].not_before == dt.datetime(2030, 1, 8, tzinfo=dt.UTC)

    frozen.advance(days=1)  # the virtual clock moved; real time did not

    assert send_rate_limits_reserve(candidates=[_candidate(2, tenant=tenant)]).allowed == [2]


def test_a_zero_cap_defers_everything_to_the_next_window(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="sender", key="rep@seller.example", per_hour=0)
    decision = send_rate_limits_reserve(candidates=[_candidate(1, tenant=tenant), _candidate(2, tenant=tenant)])
    assert decision.allowed == [] and {d.not_before for d in decision.deferred.values()} == {NEXT_HOUR}


def test_with_no_limits_configured_the_limiter_makes_no_redis_call(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=TenantFactory(), scope="tenant", key="", per_hour=1)  # someone else's

    decision = send_rate_limits_reserve(candidates=[_candidate(i, tenant=tenant) for i in range(1, 6)])

    assert decision.allowed == [1, 2, 3, 4, 5] and decision.redis_calls == 0


def test_delivery_without_limits_works_with_redis_unreachable(sim, frozen, settings):
    message = enrolled_message()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # any Redis call would fail

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.sent == [message.id]


def test_with_limits_and_redis_unreachable_messages_are_deferred_not_sent(sim, frozen, settings):
    message = enrolled_message()
    SendRateLimitFactory(tenant=message.tenant, scope="tenant", key="", per_day=1000)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.rate_limited == [message.id] and sim.messages() == []
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED and message.status_reason == "rate_limited:unavailable"
    assert message.next_attempt_at == START + rate_limits.UNAVAILABLE_RETRY


def test_the_limiter_makes_one_round_trip_per_batch_whatever_the_tenants(frozen):
    tenants = [TenantFactory() for _ in range(3)]
    for tenant in tenants:
        SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=100)
    candidates = [_candidate(i, tenant=tenants[i % 3]) for i in range(30)]

    decision = send_rate_limits_reserve(candidates=candidates)

    assert len(decision.allowed) == 30 and decision.redis_calls == 1


def test_limits_are_read_from_the_database_once_per_batch_and_cached(frozen, django_assert_num_queries):
    tenants = [TenantFactory() for _ in range(3)]
    for tenant in tenants:
        SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=100)
    candidates = [_candidate(i, tenant=tenants[i % 3]) for i in range(30)]

    with django_assert_num_queries(1):
        send_rate_limits_reserve(candidates=candidates)
    with django_assert_num_queries(0):
        send_rate_limits_reserve(candidates=candidates)


def test_the_script_is_loaded_again_when_redis_has_forgotten_it(frozen):
    # A script body Redis has never seen stands for "Redis restarted since we loaded ours".
    script = rate_limits._Script(rate_limits._RELEASE_LUA + f"\n-- {uuid.uuid4().hex}\n")
    client = rate_limits._redis_client()
    assert client.script_exists(script.sha) == [False]

    assert rate_limits._run_pipelined(client, script, [(["outreach:rl:{t0}:none"], [1])]) == [1]
    assert client.script_exists(script.sha) == [True]


def test_room_reserved_for_a_message_that_did_not_go_out_is_given_back(sim, frozen):
    first, second = _messages(2)
    SendRateLimitFactory(tenant=first.tenant, scope="tenant", key="", per_hour=1)
    sim.set_faults("5xx", count=1)

    failed = outbound_messages_deliver(outbound_message_ids=[first.id])
    assert failed.retrying == [first.id]

    assert outbound_messages_deliver(outbound_message_ids=[second.id]).sent == [second.id]


# --- SendGrid IP warmup ---------------------------------------------------------------------------

def test_warmup_caps_follow_sendgrids_table_then_stop_after_day_41():
    day0 = dt.date(2030, 1, 1)
    caps = [rate_limits.warmup_hourly_cap(started_on=day0, today=day0 + dt.timedelta(days=n)) for n in range(43)]
    assert caps[:3] == [20, 28, 39] and caps[12] == 1000 and caps[25] == 89998  # published
    assert caps[26] == round(89998 * 1.4)  # extrapolated
    assert all(later > earlier for earlier, later in zip(caps[:40], caps[1:41], strict=True))
    assert caps[41] is None and caps[42] is None  # warmed up
    assert rate_limits.warmup_hourly_cap(started_on=day0, today=day0 - dt.timedelta(days=3)) == 20


def test_a_sender_in_warmup_sends_its_hourly_cap_and_defers_the_rest(sim, frozen):
    messages = _messages(22)
    sender = messages[0].contact_campaign.campaign.sender_identity
    sender.ip_warmup_started_on = START.date()  # day 1: 20 an hour
    sender.save(update_fields=["ip_warmup_started_on"])

    report = outbound_messages_deliver(outbound_message_ids=_ids(messages))

    assert report.sent == _ids(messages[:20]) and report.rate_limited == _ids(messages[20:])
    assert len(sim.messages()) == 20
    messages[21].refresh_from_db()
    assert messages[21].status_reason == f"rate_limited:warmup:{sender.from_email}"
    assert messages[21].next_attempt_at == NEXT_HOUR


def test_a_warmed_up_sender_has_no_warmup_cap(frozen):
    tenant = TenantFactory()
    batch = [RateLimitCandidate(message_id=i, tenant_id=tenant.id, sender_email="rep@seller.example",
                                to_address=f"c{i}@acme.example",
                                warmup_started_on=START.date() - dt.timedelta(days=41)) for i in range(30)]
    decision = send_rate_limits_reserve(candidates=batch)
    assert len(decision.allowed) == 30 and decision.redis_calls == 0


# --- concurrency ----------------------------------------------------------------------------------

def _in_threads(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_admit_past_a_cap(frozen):
    tenant = TenantFactory()
    SendRateLimitFactory(tenant=tenant, scope="tenant", key="", per_hour=137)
    SendRateLimitFactory(tenant=tenant, scope="recipient_domain", key="gmail.com", per_hour=41)

    def work(thread: int) -> list[int]:
        admitted = []
        for batch in range(40):
            base = thread * 100_000 + batch * 100
            candidates = [_candidate(base + i, tenant=tenant, to=f"x{i}@gmail.com" if i % 2 else None)
                          for i in range(10)]
            admitted += send_rate_limits_reserve(candidates=candidates).allowed
        return admitted

    admitted = [i for result in _in_threads(2, work) for i in result]

    assert len(admitted) == 137  # 800 asked for
    assert sum(1 for i in admitted if i % 2) == 41  # the odd ones went to gmail.com


@pytest.mark.django_db(transaction=True)
def test_two_delivery_batches_at_once_send_no_more_than_the_cap(sim, frozen):
    messages = _messages(10)
    SendRateLimitFactory(tenant=messages[0].tenant, scope="tenant", key="", per_hour=4)
    halves = [_ids(messages[0::2]), _ids(messages[1::2])]

    reports = _in_threads(2, lambda i: outbound_messages_deliver(outbound_message_ids=halves[i]))

    assert sum(len(r.sent) for r in reports) == 4 and len(sim.messages()) == 4
    assert sum(len(r.rate_limited) for r in reports) == 6
    assert OutboundMessage.objects.filter(status="queued", status_reason="rate_limited:tenant:").count() == 6

