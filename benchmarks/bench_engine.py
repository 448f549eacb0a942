"""Campaign engine figures (issue 3): events handled per second, dispatcher actions claimed + enqueued per second.

Run: `.venv/bin/python -m benchmarks.run_all bench_engine` (its database: benchmarks/run_all.py).
(a) events through contact_campaign_handle_event (one per call) and contact_campaigns_handle_events (batches),
    on contact campaigns running the spec's example plan;
(b) the dispatcher claiming and publishing (batched Celery messages to Redis) the 100,000 due rows of a
    1,000,000-row scheduled_actions table.
Goals on a 2-core box: >= 2,000 events/s, >= 10,000 actions/s. Prints figures; never fails on speed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from outreach.queues import Queue

CONTACTS = 3000
SINGLE_EVENTS = 600
BATCH_SIZE = 1000
TOTAL_ACTIONS = 1_000_000
DUE_ACTIONS = 100_000
BENCH_SLUG = "bench-engine"
PLAN_PATH = Path(__file__).resolve().parent.parent / "campaigns" / "examples" / "example_plan.json"


def _say(text: str) -> None:
    print(f"   {text}", flush=True)


def _purge_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(Queue.CAMPAIGN_EXECUTION, Queue.CAMPAIGN_CREATION)


def _cleanup(tenant_id: int) -> None:
    """Delete this bench's rows (only its tenant's), children first; plain SQL, the ORM collector is too slow."""
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in (
            "DELETE FROM campaign_transitions WHERE tenant_id = %s",
            "DELETE FROM scheduled_actions WHERE tenant_id = %s",
            "DELETE FROM outbound_messages WHERE tenant_id = %s",
            "UPDATE contact_campaigns SET current_plan_version_id = NULL WHERE tenant_id = %s",
            "DELETE FROM campaign_plan_versions WHERE tenant_id = %s",
            "DELETE FROM contact_campaigns WHERE tenant_id = %s",
            "DELETE FROM contacts WHERE tenant_id = %s",
            "DELETE FROM campaigns WHERE tenant_id = %s",
        ):
            cursor.execute(sql, [tenant_id])


def _setup():
    from campaigns.models import Campaign, ContactCampaign
    from campaigns.services import campaign_enrol_contacts
    from contacts.models import Contact
    from messaging.models import EmailSenderIdentity
    from outreach.tenancy.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(slug=BENCH_SLUG, defaults={"name": "Engine benchmark"})
    _cleanup(tenant.pk)
    identity, _ = EmailSenderIdentity.objects.get_or_create(
        tenant=tenant, from_email="rep@bench.example", defaults={"status": EmailSenderIdentity.Status.VERIFIED})
    campaign = Campaign.objects.create(tenant=tenant, name="bench", sender_identity=identity,
                                       status=Campaign.Status.ACTIVE)
    Contact.objects.bulk_create([Contact(tenant=tenant, first_name="C", email=f"c{i}@bench.example")
                                 for i in range(CONTACTS)], batch_size=2000)
    ids = list(Contact.objects.filter(tenant=tenant).order_by("id").values_list("id", flat=True))
    plan = json.loads(PLAN_PATH.read_text())
    started = time.perf_counter()
    campaign_enrol_contacts(campaign=campaign, contact_ids=ids, plan=plan)
    elapsed = time.perf_counter() - started
    _say(f"setup: enrolled and started {len(ids):,} contact campaigns with the example plan in {elapsed:.1f} s "
         f"({len(ids) / elapsed:,.0f}/s)")
    ccs = list(ContactCampaign.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    return tenant, campaign, ccs


def _bench_events(ccs: list[int]) -> None:
    from campaigns.engine import EngineEvent
    from campaigns.services import contact_campaign_handle_event, contact_campaigns_handle_events
    from outreach import clock

    def make(kind: str, **kw) -> EngineEvent:
        return EngineEvent(type=kind, occurred_at=clock.now(), node_id="email_intro", node_visit=1, **kw)

    single = ccs[:SINGLE_EVENTS]
    started = time.perf_counter()
    for cc_id in single:
        contact_campaign_handle_event(contact_campaign_id=cc_id, event=make("sent"))
    elapsed = time.perf_counter() - started
    _say(f"(a) contact_campaign_handle_event, one `sent` per call (one transaction each): "
         f"{len(single):,} events in {elapsed:.2f} s = {len(single) / elapsed:,.0f} events/s")

    rest = ccs[SINGLE_EVENTS:]
    phases = [
        ("sent (arms 2 timeouts each)", lambda: make("sent")),
        ("machine open (recorded only)", lambda: make("open", is_machine=True)),
        ("open (engagement flag)", lambda: make("open")),
        ("click within 2 days (moves to email_hot: outbox row + send action)", lambda: make("click")),
        ("reply (email_hot has no reply transition: stops `replied`)",
         lambda: EngineEvent(type="reply", occurred_at=clock.now())),
    ]
    total_events, total_time = 0, 0.0
    for label, factory in phases:
        items = [(cc_id, factory()) for cc_id in rest]
        started = time.perf_counter()
        for start in range(0, len(items), BATCH_SIZE):
            contact_campaigns_handle_events(items=items[start:start + BATCH_SIZE])
        elapsed = time.perf_counter() - started
        total_events += len(items)
        total_time += elapsed
        _say(f"(a) batch of {BATCH_SIZE}: {label}: {len(items):,} events in {elapsed:.2f} s = "
             f"{len(items) / elapsed:,.0f} events/s")
    _say(f"(a) contact_campaigns_handle_events overall: {total_events:,} events in {total_time:.2f} s = "
         f"{total_events / total_time:,.0f} events/s")


def _load_actions(tenant_id: int, campaign_id: int, ccs: list[int]) -> None:
    """1,000,000 pending rows, DUE_ACTIONS of them due (half sends, half timeouts), loaded server-side."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO scheduled_actions (tenant_id, contact_campaign_id, campaign_id, kind, node_id, node_visit,
                event, payload, due_at, status, dedupe_key, attempts, outbound_message_id, created_at)
            SELECT %(tenant)s, (%(ccs)s::bigint[])[1 + g %% cardinality(%(ccs)s::bigint[])], %(campaign)s,
                   CASE WHEN g %% 2 = 0 THEN 'send' ELSE 'timeout' END, 'email_intro', 1,
                   CASE WHEN g %% 2 = 0 THEN '' ELSE 'no_open' END,
                   CASE WHEN g %% 2 = 0 THEN '{}'::jsonb ELSE '{"transition_index": 2}'::jsonb END,
                   CASE WHEN g <= %(due)s THEN now() - interval '1 hour' + g * interval '1 millisecond'
                        ELSE now() + interval '1 day' + g * interval '1 second' END,
                   'pending', 'bench:' || g, 0,
                   CASE WHEN g %% 2 = 0 THEN 1000000000 + g ELSE NULL END, now()
            FROM generate_series(1, %(total)s) AS g
            """,
            {"tenant": tenant_id, "ccs": ccs, "campaign": campaign_id, "due": DUE_ACTIONS, "total": TOTAL_ACTIONS},
        )
        cursor.execute("ANALYZE scheduled_actions")
    _say(f"(b) loaded {TOTAL_ACTIONS:,} scheduled actions ({DUE_ACTIONS:,} due) in "
         f"{time.perf_counter() - started:.1f} s")


def _bench_dispatcher() -> None:
    from campaigns.dispatcher import claim_due_batch
    from campaigns.holds import send_holds
    from outreach import clock

    _purge_broker()
    holds = send_holds()
    claimed = messages = batches = 0
    started = time.perf_counter()
    while True:
        stats = claim_due_batch(now=clock.now(), holds=holds, batch_size=2000, publish_chunk=500)
        claimed += stats.claimed
        messages += stats.messages
        batches += 1
        if stats.claimed + stats.held == 0:
            break
    elapsed = time.perf_counter() - started
    _say(f"(b) dispatcher: claimed and published {claimed:,} due actions from a {TOTAL_ACTIONS:,}-row table in "
         f"{elapsed:.2f} s = {claimed / elapsed:,.0f} actions/s ({messages} Celery messages of <= 500 ids, "
         f"{batches} claim transactions of <= 2,000 rows)")
    _purge_broker()


def main() -> None:
    from django.db import connection

    started = time.perf_counter()
    _purge_broker()
    tenant, campaign, ccs = _setup()
    _bench_events(ccs)
    _purge_broker()
    _load_actions(tenant.pk, campaign.pk, ccs)
    _bench_dispatcher()
    _cleanup(tenant.pk)
    if connection.get_autocommit():  # VACUUM cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE scheduled_actions")
    _say(f"total bench time {time.perf_counter() - started:.1f} s")
