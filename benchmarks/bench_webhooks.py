"""SendGrid Event Webhook throughput on PostgreSQL, batches of 1,000 events.

1. accepted/s at the endpoint: signature check (ECDSA P-256 over the raw body), JSON parse and
   validation, raw store in webhook_deliveries, enqueue after commit; in-process through
   Django's test Client (full middleware stack, no network).
2. normalised/s by the processor, end to end: link to outbound messages, deduplicating bulk
   insert into message_events, delivery statuses, engine transitions (opens move contact
   campaigns to their next node, creating outbox rows and timers), one delivery (one POST's
   1,000 events) per call, as the `webhooks.process_deliveries` task receives them.
3. the same events again with new sg_event_ids (SendGrid's retries): deduplicated, no engine work.

Goals on one 2-core machine: 50,000 events/s accepted, 5,000 events/s processed.
"""
from __future__ import annotations

import os
import time
import uuid

from outreach.queues import Queue

BATCH = 1000
BATCHES = int(os.environ.get("BENCH_WEBHOOK_BATCHES", "40"))
EVENTS_PER_MESSAGE = 5  # processed, delivered, machine open, human open, click
HUMAN_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605"


def _setup(n_messages: int):
    from django.db import connection

    from campaigns.engine import EngineEvent
    from campaigns.services import campaign_enrol_contacts, contact_campaigns_handle_events
    from campaigns.tests.factories import CampaignFactory
    from contacts.models import Contact
    from messaging.models import OutboundMessage
    from messaging.tests.factories import TEST_PLAN, EmailSenderIdentityFactory
    from outreach import clock
    from outreach.tenancy.tests.factories import TenantFactory

    run = uuid.uuid4().hex[:8]
    tenant = TenantFactory(slug=f"bench-webhooks-{run}")
    sender = EmailSenderIdentityFactory(tenant=tenant, from_email=f"rep-{run}@seller.example")
    campaign = CampaignFactory(tenant=tenant, sender_identity=sender)
    contacts = Contact.objects.bulk_create(
        [Contact(tenant=tenant, first_name=f"C{i}", email=f"c{i}-{run}@acme.example") for i in range(n_messages)]
    )
    ids = [c.id for c in contacts]
    for start in range(0, len(ids), 1000):
        campaign_enrol_contacts(campaign=campaign, contact_ids=ids[start:start + 1000], plan=TEST_PLAN)
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages SET status = 'sent', sent_at = %s, provider_message_id = 'bx' || id, "
            "message_id_header = '<bench-' || id || '@seller.example>' "
            "WHERE tenant_id = %s AND node_id = 'email_intro' "
            "RETURNING id, contact_campaign_id, node_visit",
            [now, tenant.id],
        )
        rows = cursor.fetchall()
    items = [(cc_id, EngineEvent(type="sent", occurred_at=now, node_id="email_intro", node_visit=visit,
                                 outbound_message_id=mid)) for mid, cc_id, visit in rows]
    for start in range(0, len(items), 2000):
        contact_campaigns_handle_events(items=items[start:start + 2000])
    messages = list(OutboundMessage.objects.filter(id__in=[r[0] for r in rows]).values(
        "id", "tenant_id", "contact_campaign_id", "to_address", "provider_message_id"))
    return tenant, campaign, messages


def _events(messages: list[dict], campaign_id: int, base_ts: int) -> list[dict]:
    events: list[dict] = []
    for m in messages:
        common = {"email": m["to_address"], "sg_message_id": f"{m['provider_message_id']}.filter0001.1.0",
                  "smtp-id": f"<{m['provider_message_id']}@ismtpd.sendgrid.net>",
                  "category": [f"campaign-{campaign_id}", "node-email_intro"],
                  "tenant_id": str(m["tenant_id"]), "campaign_id": str(campaign_id),
                  "contact_campaign_id": str(m["contact_campaign_id"]), "node_id": "email_intro",
                  "outbound_message_id": str(m["id"])}
        events += [
            {**common, "event": "processed", "timestamp": base_ts, "sg_event_id": uuid.uuid4().hex},
            {**common, "event": "delivered", "timestamp": base_ts + 3, "sg_event_id": uuid.uuid4().hex,
             "response": "250 2.0.0 OK", "ip": "168.245.1.2", "tls": 1},
            {**common, "event": "open", "timestamp": base_ts + 40, "sg_event_id": uuid.uuid4().hex,
             "useragent": "Mozilla/5.0", "ip": "17.58.63.12", "sg_machine_open": True},
            {**common, "event": "open", "timestamp": base_ts + 3600, "sg_event_id": uuid.uuid4().hex,
             "useragent": HUMAN_UA, "ip": "198.51.100.7", "sg_machine_open": False},
            {**common, "event": "click", "timestamp": base_ts + 3700, "sg_event_id": uuid.uuid4().hex,
             "useragent": HUMAN_UA, "ip": "198.51.100.7", "url": "https://seller.example/demo",
             "url_offset": {"index": 0, "type": "html"}},
        ]
    return events


def _post_all(client, key, bodies: list[bytes]) -> tuple[float, list[int]]:
    from simulators.sendgrid.signing import sign_event_payload

    signed = []
    for body in bodies:
        ts = str(int(time.time()))
        signed.append((body, {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": sign_event_payload(key, ts, body),
                              "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": ts}))
    started = time.perf_counter()
    for body, headers in signed:
        response = client.post("/webhooks/sendgrid/events", data=body, content_type="application/json", **headers)
        assert response.status_code == 200, response.content
    elapsed = time.perf_counter() - started
    from messaging.models import WebhookDelivery

    ids = list(WebhookDelivery.objects.order_by("-id").values_list("id", flat=True)[:len(bodies)])
    return elapsed, sorted(ids)


ENGINE_SECONDS = [0.0]


def _timed_engine():
    """Wrap the engine's batch entry point to split processing time (measurement only)."""
    import campaigns.interface

    real = campaigns.interface.contact_campaigns_handle_events

    def timed(**kwargs):
        started = time.perf_counter()
        try:
            return real(**kwargs)
        finally:
            ENGINE_SECONDS[0] += time.perf_counter() - started

    campaigns.interface.contact_campaigns_handle_events = timed
    return real


def _process(ids: list[int], *, absorb: int) -> tuple[float, int, int]:
    from messaging.webhooks.processing import webhook_deliveries_process

    new = engine = 0
    ENGINE_SECONDS[0] = 0.0
    started = time.perf_counter()
    for delivery_id in ids:
        report = webhook_deliveries_process(delivery_ids=[delivery_id], absorb_pending=absorb)
        assert not report.failed, report.failed
        new += report.events.new
        engine += report.events.engine_events
    return time.perf_counter() - started, new, engine


def _drop_published_tasks(count: int) -> None:
    """Take back the process_deliveries messages this run published (no worker consumes them here)."""
    import redis
    from django.conf import settings

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).lpop(Queue.WEBHOOKS, count)
    except Exception:  # noqa: BLE001 - best effort cleanup
        pass


def main() -> None:
    import orjson
    from django.conf import settings
    from django.test import Client, override_settings

    from campaigns.models import CampaignTransition
    from messaging.models import WebhookDelivery
    from simulators.sendgrid.signing import generate_key_pair

    ABSORB_PENDING = settings.WEBHOOK_PROCESS_ABSORB_PENDING  # what the process_deliveries task folds in

    # Deliveries an interrupted earlier run left pending would be absorbed into the measurement.
    WebhookDelivery.objects.filter(status="pending").update(status="failed", attempts=99,
                                                            error="left over by an earlier benchmark run")
    n_events = BATCH * BATCHES
    n_messages = n_events // EVENTS_PER_MESSAGE
    started = time.perf_counter()
    tenant, campaign, messages = _setup(n_messages)
    print(f"   setup: {n_messages} sent messages in running contact campaigns ({time.perf_counter() - started:.1f} s)")
    events = _events(messages, campaign.id, int(time.time()) - 7200)
    bodies = [orjson.dumps(events[i:i + BATCH]) for i in range(0, len(events), BATCH)]
    key, public_key = generate_key_pair()
    client = Client()
    real_engine = _timed_engine()
    with override_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=public_key, SENDGRID_WEBHOOK_MAX_AGE_SECONDS=3600):
        transitions_before = CampaignTransition.objects.filter(tenant=tenant).count()
        # Two halves. First as the webhooks.process_deliveries task runs under load: one POST's id per
        # task, folding up to ABSORB_PENDING other waiting deliveries into its transaction. Then strictly
        # one delivery per transaction. Each half is posted only when the one before is processed.
        half = len(bodies) // 2
        accept_time = 0.0
        for label, part, absorb in (("task path, absorbing waiting deliveries", bodies[:half], ABSORB_PENDING),
                                    ("one 1,000-event delivery per transaction", bodies[half:], 0)):
            elapsed, ids = _post_all(client, key, part)
            accept_time += elapsed
            elapsed, new, engine = _process(ids, absorb=absorb)
            print(f"   processed ({label}): {new:,} new events ({engine:,} engine events) in {elapsed:.2f} s = "
                  f"{new / elapsed:,.0f} events/s; engine calls {ENGINE_SECONDS[0]:.2f} s "
                  f"({ENGINE_SECONDS[0] / elapsed:.0%}), the rest {new / (elapsed - ENGINE_SECONDS[0]):,.0f} events/s")
        moved = CampaignTransition.objects.filter(tenant=tenant).count() - transitions_before
        print(f"   engine: {moved:,} transitions recorded")
        print(f"   accepted: {n_events:,} events in {len(bodies)} POSTs of {BATCH:,}: {accept_time:.2f} s = "
              f"{n_events / accept_time:,.0f} events/s ({len(bodies) / accept_time:,.0f} POSTs/s, "
              f"{sum(map(len, bodies)) / len(bodies) / 1024:.0f} KB each)")

        retried = [{**e, "sg_event_id": uuid.uuid4().hex} for e in events[: BATCH * min(10, BATCHES)]]
        dup_bodies = [orjson.dumps(retried[i:i + BATCH]) for i in range(0, len(retried), BATCH)]
        _, dup_ids = _post_all(client, key, dup_bodies)
        elapsed, new, _ = _process(dup_ids, absorb=ABSORB_PENDING)
        print(f"   duplicates (new sg_event_id): {len(retried):,} events in {elapsed:.2f} s = "
              f"{len(retried) / elapsed:,.0f} events/s, {new} stored")
    import campaigns.interface

    campaigns.interface.contact_campaigns_handle_events = real_engine
    _drop_published_tasks(len(bodies) + len(dup_bodies))
    print("   goals: 50,000 events/s accepted, 5,000 events/s processed")
