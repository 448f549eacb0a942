"""Rollups are kept exactly once from what webhooks store: replays, reorders and re-processing never
double count, late events count in the hour they happened, verify finds a difference and rebuild mends it."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from analytics.models import CampaignDaily, ContactHourly, PendingFact, SenderDaily, TenantDaily
from analytics.tests.helpers import ALL_ROLLUPS, T0, event, ingest, reprocess, totals
from messaging.tests.factories import InboundMessageFactory, enrolled_message

pytestmark = pytest.mark.django_db

HUMAN_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605"
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def message():
    return enrolled_message(email="dana@acme.example")


def _a_day_of_events(message) -> list[dict]:
    return [
        event(message, "processed", T0),
        event(message, "delivered", T0 + dt.timedelta(seconds=30)),
        event(message, "open", T0 + HOUR, useragent=HUMAN_UA),
        event(message, "open", T0 + 2 * HOUR, useragent=HUMAN_UA),
        event(message, "open", T0 + HOUR + dt.timedelta(minutes=1), sg_machine_open=True, useragent="GoogleImageProxy"),
        event(message, "click", T0 + 3 * HOUR, url="https://x.example/a", useragent=HUMAN_UA),
        event(message, "click", T0 + 3 * HOUR, url="https://x.example/b", useragent="python-requests/2"),
    ]


def test_each_stored_event_counts_once_in_every_rollup(message):
    ingest(_a_day_of_events(message))
    expected = {"sent": 1, "delivered": 1, "opens_human": 2, "opens_machine": 1, "unique_human_opens": 1,
                "clicks_human": 1, "clicks_scanner": 1, "unique_clickers": 1}
    assert totals(TenantDaily, tenant_id=message.tenant_id) == expected
    campaign_id = message.contact_campaign.campaign_id
    assert totals(CampaignDaily, campaign_id=campaign_id) == expected
    assert totals(ContactHourly, contact_id=message.contact_id) == expected
    assert totals(SenderDaily, sender_id=message.sender_identity_id) == expected
    assert set(CampaignDaily.objects.filter(campaign_id=campaign_id).values_list("node_id", "plan_source")) == {
        (message.node_id, message.contact_campaign.current_plan_version.source)}


def test_a_replayed_batch_and_a_reprocessed_delivery_count_nothing_again(message):
    events = _a_day_of_events(message)
    delivery = ingest(events)
    before = totals(TenantDaily, tenant_id=message.tenant_id)
    ingest(events)                                      # the same events in another POST
    ingest([{**e, "sg_event_id": e["sg_event_id"] + "x"} for e in events])  # new ids, same content
    reprocess(delivery)                                 # the same stored delivery again
    assert totals(TenantDaily, tenant_id=message.tenant_id) == before
    call_command("analytics_verify", "--from", "2026-03-01", "--to", "2026-03-03")


def test_a_late_earlier_open_moves_the_unique_open_to_its_own_hour(message):
    ingest([event(message, "open", T0 + 5 * HOUR, useragent=HUMAN_UA)])
    ingest([event(message, "open", T0 + HOUR, useragent=HUMAN_UA)])  # happened first, arrived last
    assert totals(ContactHourly)["unique_human_opens"] == 1 and totals(ContactHourly)["opens_human"] == 2
    uniques = dict(ContactHourly.objects.filter(unique_human_opens__gt=0).values_list("hour", "unique_human_opens"))
    assert uniques == {T0.replace(minute=0) + HOUR: 1}
    call_command("analytics_verify", "--from", "2026-03-02", "--to", "2026-03-02")


def test_a_late_event_counts_in_the_hour_it_happened_not_when_it_arrived(message):
    ingest([event(message, "delivered", T0 - 30 * HOUR)])
    totals(ContactHourly)
    rows = list(ContactHourly.objects.values_list("hour", "delivered"))
    assert rows == [((T0 - 30 * HOUR).replace(minute=0), 1)]


def test_events_are_counted_only_when_their_transaction_commits(message):
    ingest(_a_day_of_events(message)[:2])
    assert PendingFact.objects.count() == 2  # stored with the events, not yet counted
    totals()
    assert PendingFact.objects.count() == 0


def test_bounces_unsubscribes_spam_reports_and_replies_by_class_are_counted(message):
    ingest([event(message, "bounce", T0, type="bounce"), event(message, "bounce", T0 + HOUR, type="blocked"),
            event(message, "dropped", T0), event(message, "deferred", T0, attempt="1"),
            event(message, "spamreport", T0), event(message, "unsubscribe", T0)])
    assert totals(TenantDaily, tenant_id=message.tenant_id) == {
        "bounced_hard": 1, "bounced_soft": 1, "dropped": 1, "deferred": 1, "spam_reports": 1, "unsubscribes": 1}


def test_a_reply_counts_by_its_class_when_it_is_stored(message):
    from messaging.interface import reply_stored

    reply = InboundMessageFactory(tenant=message.tenant, outbound_message=message, classification="positive",
                                  received_at=T0)
    reply_stored.send(inbound=reply)
    assert totals(CampaignDaily, campaign_id=message.contact_campaign.campaign_id) == {"replies_positive": 1}
    call_command("analytics_verify", "--from", "2026-03-02", "--to", "2026-03-02")


def test_verify_exits_non_zero_on_a_planted_difference_and_rebuild_restores_the_counts(message):
    ingest(_a_day_of_events(message))
    totals()
    good = {m: sorted(model.objects.values_list(*[f.attname for f in model._meta.fields if f.name != "id"]))
            for m, model in enumerate(ALL_ROLLUPS)}
    TenantDaily.objects.update(delivered=7)
    CampaignDaily.objects.update(opens_human=0)
    with pytest.raises(CommandError, match="differ from raw"):
        call_command("analytics_verify", "--from", "2026-03-02", "--to", "2026-03-02")
    call_command("analytics_rebuild", "--from", "2026-03-02", "--to", "2026-03-02")
    call_command("analytics_verify", "--from", "2026-03-02", "--to", "2026-03-02")
    assert good == {m: sorted(model.objects.values_list(*[f.attname for f in model._meta.fields if f.name != "id"]))
                    for m, model in enumerate(ALL_ROLLUPS)}


def test_a_reversed_range_is_refused_with_the_field_named():
    with pytest.raises(CommandError, match="--to is before --from"):
        call_command("analytics_verify", "--from", "2026-03-05", "--to", "2026-03-01")
    with pytest.raises(CommandError, match="--from: 'March'"):
        call_command("analytics_rebuild", "--from", "March")


def test_the_periodic_pass_steps_aside_while_another_writer_holds_the_turn(message):
    from django.db import connection

    from analytics.rollups import ROLLUP_LOCK, rollups_catch_up
    from analytics.tasks import rollup_pending

    ingest(_a_day_of_events(message)[:2])
    other = connection.copy()  # another session holding the writer's turn
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ROLLUP_LOCK])
            assert rollup_pending() == 0 and PendingFact.objects.count() == 2
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ROLLUP_LOCK])
    finally:
        other.close()
    assert rollups_catch_up(max_passes=1, limit=1) == 1 and PendingFact.objects.count() == 1
