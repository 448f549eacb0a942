"""message_events and webhook_deliveries as time partitions (docs/storage.md): repeats stay stored once
across a partition boundary, partitions are created ahead (rows that had landed in the default partition
move into theirs), and retention drops whole partitions except those the engine still needs."""
from __future__ import annotations

import datetime as dt
import io

import orjson
import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from campaigns.models import CampaignTransition
from campaigns.tests.factories import CampaignTransitionFactory, ContactCampaignFactory, ScheduledActionFactory
from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    MessageEvent,
    WebhookDelivery,
    WebhookPayloadHash,
)
from messaging.storage import payload_hashes_prune
from messaging.tests.factories import (
    CommunicationSuppressionFactory,
    ContactUnsubscribeFactory,
    MessageEventFactory,
    OutboundMessageFactory,
)
from messaging.webhooks.processing import webhook_deliveries_process
from messaging.webhooks.store import webhook_delivery_store
from outreach import clock
from outreach.admin import EstimatedCountPaginator
from outreach.partitioning import partition_name, partitions, partitions_ensure
from outreach.retention import DROP, HELD, KEEP, retention_apply, retention_plan

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def at(monkeypatch):
    """Set the clock: at(moment)."""
    def _set(moment: dt.datetime) -> dt.datetime:
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment
    return _set


def _event(timestamp: dt.datetime, event_id: str, *, event: str = "delivered") -> dict:
    return {"email": "dana@acme.example", "timestamp": int(timestamp.timestamp()), "event": event,
            "sg_event_id": event_id, "sg_message_id": "unknown-msg.filter0001"}


def _store_and_process(events: list[dict]) -> int | None:
    body = orjson.dumps(events)
    delivery_id = webhook_delivery_store(kind=WebhookDelivery.Kind.SENDGRID_EVENTS, body=body, headers={},
                                         signature_valid=True, event_count=len(events))
    if delivery_id is not None:
        webhook_deliveries_process(delivery_ids=[delivery_id])
    return delivery_id


def _partition_of(table: str, pk: int, column: str = "id") -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = %s", [pk])
        return cursor.fetchone()[0]


def test_an_event_repeated_after_the_month_turned_is_still_stored_once(at):
    occurred = dt.datetime(2027, 1, 31, 23, 58, tzinfo=UTC)
    at(occurred + dt.timedelta(minutes=1))
    partitions_ensure(now=clock.now(), since=clock.now())
    _store_and_process([_event(occurred, "evt-1")])
    # SendGrid retries into the next month (a new partition for the rows arriving now), with a new
    # sg_event_id for the same content, and with the same one.
    at(dt.datetime(2027, 2, 1, 0, 30, tzinfo=UTC))
    partitions_ensure(now=clock.now())
    _store_and_process([_event(occurred, "evt-1-retried"), _event(occurred, "evt-1")])

    stored = MessageEvent.objects.get()
    assert stored.provider_event_id == "evt-1"
    january = dt.datetime(2027, 1, 1, tzinfo=UTC)
    assert _partition_of("message_events", stored.pk) == partition_name("message_events", january)


def test_a_post_repeated_in_the_next_weekly_partition_is_stored_once(at):
    events = [_event(dt.datetime(2027, 1, 10, 23, 59, tzinfo=UTC), "evt-2")]
    at(dt.datetime(2027, 1, 10, 23, 59, 30, tzinfo=UTC))  # a Sunday: the last minute of its week
    partitions_ensure(now=clock.now(), since=clock.now())
    first = _store_and_process(events)
    at(dt.datetime(2027, 1, 11, 0, 1, tzinfo=UTC))  # Monday: another partition of webhook_deliveries
    again = _store_and_process(events)

    assert first is not None and again is None
    assert WebhookDelivery.objects.count() == 1 and MessageEvent.objects.count() == 1
    assert _partition_of("webhook_deliveries", first) == "webhook_deliveries_p20270104"


def test_raw_post_hashes_are_kept_at_least_a_week_then_pruned(at, settings):
    at(dt.datetime(2027, 1, 4, tzinfo=UTC))
    _store_and_process([_event(dt.datetime(2027, 1, 4, tzinfo=UTC), "evt-3")])
    assert settings.WEBHOOK_DEDUPE_DAYS >= 7
    assert payload_hashes_prune(now=dt.datetime(2027, 1, 10, tzinfo=UTC)) == 0
    assert payload_hashes_prune(now=dt.datetime(2027, 1, 4, tzinfo=UTC) + dt.timedelta(
        days=settings.WEBHOOK_DEDUPE_DAYS, seconds=1)) == 1
    assert not WebhookPayloadHash.objects.exists()


def test_partitions_are_created_ahead_and_take_over_their_rows_from_the_default_partition():
    far = dt.datetime(2031, 5, 17, tzinfo=UTC)
    event = MessageEventFactory(occurred_at=far)
    assert _partition_of("message_events", event.pk) == "message_events_default"

    created = partitions_ensure(now=dt.datetime(2031, 4, 2, tzinfo=UTC), tables=["message_events"],
                                since=dt.datetime(2031, 4, 1, tzinfo=UTC))

    assert created == [f"message_events_p2031{m:02d}01" for m in (4, 5, 6, 7)]
    assert _partition_of("message_events", event.pk) == "message_events_p20310501"
    assert partitions_ensure(now=dt.datetime(2031, 4, 2, tzinfo=UTC), tables=["message_events"]) == []


def test_the_beat_schedule_creates_partitions_ahead_and_applies_retention_daily(settings):
    tasks = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["analytics.ensure_partitions"]["schedule"] <= 86400
    assert tasks["analytics.apply_retention"]["options"]["expires"] < tasks["analytics.apply_retention"]["schedule"]


# --- retention ----------------------------------------------------------------------------------------------

def _fates(now: dt.datetime) -> dict[str, tuple[str, str]]:
    return {fate.partition: (fate.fate, fate.reason) for fate in retention_plan(now=now)}


def _oldest(table: str) -> str:
    return next(p.name for p in partitions(table) if not p.is_default)


def _oldest_start(table: str) -> dt.datetime:
    return next(p.start for p in partitions(table) if not p.is_default)


def test_retention_drops_whole_old_partitions_and_never_touches_opt_outs_or_suppressions(settings):
    start = _oldest_start("message_events")
    MessageEventFactory(occurred_at=start + dt.timedelta(days=2))
    CommunicationSuppressionFactory()
    ContactUnsubscribeFactory()
    after = start + dt.timedelta(days=settings.RETENTION_DAYS["message_events"] + 40)
    assert _fates(after)[_oldest("message_events")][0] == DROP
    assert _fates(start)[_oldest("message_events")][0] == KEEP

    dropped = {fate.partition for fate in retention_apply(now=after)}

    assert "message_events_p" + f"{start:%Y%m%d}" in dropped
    assert not MessageEvent.objects.exists()
    assert CommunicationSuppression.objects.count() == 1 and ContactUnsubscribe.objects.count() == 1
    assert "message_events_default" not in dropped


def test_retention_keeps_an_old_partition_whose_events_a_pending_timer_of_a_live_enrolment_needs(settings):
    start = _oldest_start("message_events")
    enrolment = ContactCampaignFactory(status="active", current_node_id="email_intro")
    message = OutboundMessageFactory(tenant=enrolment.tenant, contact_campaign=enrolment)
    MessageEventFactory(tenant=enrolment.tenant, outbound_message=message, occurred_at=start + dt.timedelta(days=1))
    ScheduledActionFactory(tenant=enrolment.tenant, contact_campaign=enrolment, kind="timeout", status="pending")
    after = start + dt.timedelta(days=settings.RETENTION_DAYS["message_events"] + 40)

    fate, reason = _fates(after)[_oldest("message_events")]
    retention_apply(now=after)

    assert fate == HELD and "pending timer" in reason
    assert MessageEvent.objects.filter(outbound_message=message).count() == 1


def test_retention_keeps_a_webhook_partition_with_a_delivery_not_processed_yet(settings, at):
    start = _oldest_start("webhook_deliveries")
    at(start + dt.timedelta(hours=1))
    delivery_id = webhook_delivery_store(kind=WebhookDelivery.Kind.SENDGRID_EVENTS, body=b"[]", headers={},
                                         signature_valid=True, event_count=0)
    after = start + dt.timedelta(days=settings.RETENTION_DAYS["webhook_deliveries"] + 14)

    fate, reason = _fates(after)[_oldest("webhook_deliveries")]
    retention_apply(now=after)

    assert fate == HELD and "not processed" in reason
    assert WebhookDelivery.objects.filter(pk=delivery_id).exists()


def test_the_retention_command_lists_every_partition_and_what_goes_next():
    out = io.StringIO()
    call_command("storage_retention", stdout=out)
    text = out.getvalue()
    assert "message_events_default" in text and "webhook_deliveries_p" in text
    assert "would be dropped" in text


def test_the_storage_admin_page_shows_the_retention_plan(admin_client):
    page = admin_client.get(reverse("admin:messaging_webhookdelivery_storage"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "message_events_default" in body and "webhook_deliveries" in body


def test_the_admin_estimate_of_a_partitioned_table_sums_its_partitions():
    MessageEventFactory.create_batch(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE message_events")
    paginator = EstimatedCountPaginator(MessageEvent.objects.all(), 50)
    paginator.exact_below = 1  # force the estimate path
    assert paginator.count == 3


def test_old_campaign_transitions_go_by_whole_months_after_their_retention(settings, at):
    start = _oldest_start("campaign_transitions")
    at(start + dt.timedelta(days=3))
    old = CampaignTransitionFactory()
    at(start + dt.timedelta(days=settings.RETENTION_DAYS["campaign_transitions"] + 40))
    partitions_ensure(now=clock.now())
    recent = CampaignTransitionFactory(contact_campaign=old.contact_campaign, tenant=old.tenant)
    with connection.cursor() as cursor:
        # The test's own transaction still holds the rows' deferred foreign-key checks, and PostgreSQL
        # refuses to detach a partition with checks pending; the daily task runs in a transaction of its own.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    retention_apply(now=clock.now())

    assert list(CampaignTransition.objects.values_list("id", flat=True)) == [recent.id]
