"""The dispatcher's hand-out of sends (issue 19): back-pressure (never more outstanding than delivery starts
within the lease) and a fair share across tenants."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns import dispatcher
from campaigns.dispatcher import dispatch_due, send_capacity
from campaigns.models import ScheduledAction
from campaigns.tests.factories import ContactCampaignFactory, purge_queues, queued_tasks
from campaigns.tests.test_dispatcher import make_actions

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


def _claimed_by_tenant() -> dict[int, int]:
    counts: dict[int, int] = {}
    for tenant_id in ScheduledAction.objects.filter(status="claimed", kind="send").values_list("tenant_id", flat=True):
        counts[tenant_id] = counts.get(tenant_id, 0) + 1
    return counts


def test_a_tenant_with_100x_the_due_sends_does_not_make_the_others_wait(settings):
    settings.DISPATCH_MIN_OUTSTANDING_SENDS = settings.DISPATCH_MAX_OUTSTANDING_SENDS = 40
    big = ContactCampaignFactory()
    small = [ContactCampaignFactory() for _ in range(3)]
    # The big tenant's burst is due first: in due order alone it would take the whole room.
    make_actions(big, 300, due_at=T0 - dt.timedelta(hours=1), kind="send", prefix="big")
    for cc in small:
        make_actions(cc, 3, due_at=T0 - dt.timedelta(minutes=1), kind="send", prefix="small")

    stats = dispatch_due(now=T0)

    claimed = _claimed_by_tenant()
    assert stats.claimed == 40
    assert all(claimed[cc.tenant_id] == 3 for cc in small)  # every small tenant's sends all handed out
    assert claimed[big.tenant_id] == 31  # the room the others left, water-filled back to the big one


def test_no_more_sends_are_handed_out_than_the_room_and_none_twice_while_they_are_outstanding(
        settings, django_capture_on_commit_callbacks):
    settings.DISPATCH_MIN_OUTSTANDING_SENDS = settings.DISPATCH_MAX_OUTSTANDING_SENDS = 25
    cc = ContactCampaignFactory()
    rows = make_actions(cc, 100, due_at=T0 - dt.timedelta(minutes=1), kind="send")

    with django_capture_on_commit_callbacks(execute=True):
        first = dispatch_due(now=T0)
        # Delivery is slow (nothing sent yet): the next passes hand out nothing more, and nothing again.
        second = dispatch_due(now=T0 + dt.timedelta(seconds=5))
        third = dispatch_due(now=T0 + dt.timedelta(seconds=10))

    assert (first.claimed, second.claimed, third.claimed) == (25, 0, 0)
    assert ScheduledAction.objects.filter(id__in=[r.id for r in rows], status="pending").count() == 75
    published = [i for name, args in queued_tasks() for i in args[0]]
    assert len(published) == len(set(published)) == 25
    # Once they are done (sent), the room is back.
    ScheduledAction.objects.filter(status="claimed").update(status="done")
    assert dispatch_due(now=T0 + dt.timedelta(seconds=15)).claimed == 25


def test_one_tenant_holds_at_most_its_cap_of_the_outstanding_sends(settings):
    settings.DISPATCH_MIN_OUTSTANDING_SENDS = settings.DISPATCH_MAX_OUTSTANDING_SENDS = 100
    settings.DISPATCH_TENANT_MAX_OUTSTANDING_SENDS = 10
    cc = ContactCampaignFactory()
    make_actions(cc, 50, due_at=T0 - dt.timedelta(minutes=1), kind="send")

    assert dispatch_due(now=T0).claimed == 10
    assert dispatch_due(now=T0).claimed == 0


def test_capacity_follows_the_send_rate_within_half_a_lease_between_floor_and_ceiling(settings):
    settings.CAMPAIGN_ACTION_LEASE_SECONDS = 300
    settings.DISPATCH_MIN_OUTSTANDING_SENDS = 2000
    settings.DISPATCH_MAX_OUTSTANDING_SENDS = 20000
    assert send_capacity(sent_per_second=0) == 2000  # nothing measured yet: the floor
    assert send_capacity(sent_per_second=100) == 15000  # latency x10: 100/s starts 15,000 in 150 s
    assert send_capacity(sent_per_second=1000) == 20000  # the ceiling
    assert dispatcher.LEASE_SHARE == 0.5


def test_timers_are_not_held_back_by_the_send_room(settings):
    settings.DISPATCH_MIN_OUTSTANDING_SENDS = settings.DISPATCH_MAX_OUTSTANDING_SENDS = 1
    cc = ContactCampaignFactory()
    make_actions(cc, 5, due_at=T0 - dt.timedelta(minutes=1), kind="send", prefix="s")
    make_actions(cc, 30, due_at=T0 - dt.timedelta(minutes=2), prefix="t")

    stats = dispatch_due(now=T0, batch_size=10)

    assert stats.claimed == 31
