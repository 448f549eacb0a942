"""`make bench-scale`: the storage at 1M and 10M events, side by side (issue 13, docs/storage.md).

For each size N (BENCH_SCALE_SIZES, default "1000000"; add 10000000 for the big one) the tables are
emptied and rebuilt with generate_series, realistic in shape: 10 tenants, 200 campaigns, N/10 contacts
and enrolments, N/5 outbox rows (most sent), N/5 scheduled actions (90% done), N events over 90 days (a
few rare types), N/1000 raw webhook POSTs, one transition per message. Then it prints:

- event ingest events/s: the webhook processor's deduplicating bulk insert (messaging.webhooks.store,
  20 batches of 1,000 new events, then the same again as retries);
- dispatcher claims/s: the claim statement over 20,000 due actions, batches of 1,000;
- bytes per row of each table (heap, indexes and TOAST);
- the admin and API reads (ms, best of 5): the event list of a rare type in one tenant, the event
  search by address (through the outbox), the API enrolment list's first page, the webhook deliveries
  changelist page, the admin's estimated count;
- the ratio of the last size to the first.

Runs against its own database (BENCH_DATABASE_URL, as `make bench`); never against dev data.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable

SIZES = [int(s) for s in os.environ.get("BENCH_SCALE_SIZES", "1000000").split(",")]
TABLES = ("message_events", "outbound_messages", "scheduled_actions", "contact_campaigns", "contacts",
          "webhook_deliveries", "campaign_transitions")
TENANTS = 10
CAMPAIGNS = 200
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ADDRESS = 1234  # the contact whose events are searched by address


def _sql(cursor, statement: str, params: list | dict | None = None) -> None:
    cursor.execute(statement, params if params is not None else [])


def _build(n: int) -> None:
    """Empty the tables and fill them for size n (events), in one transaction per table."""
    from django.db import connection, transaction

    contacts = n // 10
    with transaction.atomic(), connection.cursor() as c:
        _sql(c, "TRUNCATE message_events, webhook_deliveries, webhook_payload_hashes, campaign_transitions, "
                "scheduled_actions, outbound_messages, campaign_plan_versions, contact_campaigns, contacts, "
                "leads, campaigns, email_sender_identities, tenants RESTART IDENTITY CASCADE")
        _sql(c, "INSERT INTO tenants (name, slug, sending_paused, unsubscribe_redirect_url, created_at) "
                "SELECT 'Tenant ' || t, 'scale-' || t, false, '', %s FROM generate_series(1, %s) t",
             [NOW, TENANTS])
    with transaction.atomic(), connection.cursor() as c:
        _sql(c, "INSERT INTO campaigns (tenant_id, name, goal, offer, ai_instructions, status, "
                "allowed_link_domains, created_at, updated_at) SELECT 1 + g %% %s, 'Campaign ' || g, '', '', '', "
                "'active', '[]', %s, %s FROM generate_series(0, %s - 1) g", [TENANTS, NOW, NOW, CAMPAIGNS])
        _sql(c, "INSERT INTO contacts (tenant_id, first_name, last_name, email, phone, title, timezone, "
                "language, created_at, updated_at) SELECT 1 + g %% %s, 'C' || g, '', "
                "'c' || g || '@acme' || (g %% 997) || '.example', '', '', '', '', %s, %s "
                "FROM generate_series(0, %s - 1) g", [TENANTS, NOW, NOW, contacts])
        _sql(c, "INSERT INTO contact_campaigns (tenant_id, campaign_id, contact_id, channel, status, "
                "current_node_id, node_visit, engagement_flags, stop_reason, created_at, updated_at) "
                "SELECT ct.tenant_id, ct.tenant_id + %s * (ct.id %% (%s / %s)), ct.id, 'email', "
                "CASE WHEN ct.id %% 10 < 7 THEN 'completed' ELSE 'active' END, 'email_follow', 1, 0, '', "
                "%s - make_interval(secs => ct.id %% 7776000), %s FROM contacts ct",
             [TENANTS, CAMPAIGNS, TENANTS, NOW, NOW])
    with transaction.atomic(), connection.cursor() as c:
        _sql(c, "INSERT INTO outbound_messages (tenant_id, contact_campaign_id, contact_id, channel, node_id, "
                "node_visit, dedupe_key, status, status_reason, delivery_status, to_address, subject, body_text, "
                "body_html, message_id_header, in_reply_to, \"references\", provider_message_id, attempts, "
                "last_error, sent_at, created_at, updated_at) "
                "SELECT cc.tenant_id, cc.id, cc.contact_id, 'email', 'email_' || s, 1, 'd:' || cc.id || ':' || s, "
                "'sent', '', 'delivered', 'c' || cc.contact_id - 1 || '@acme' || ((cc.contact_id - 1) %% 997) "
                "|| '.example', 'Quick idea', repeat('Hello there. ', 40), '', '<m' || cc.id || '.' || s "
                "|| '@seller.example>', '', '', 'pm' || cc.id || '.' || s, 1, '', cc.created_at, cc.created_at, "
                "cc.created_at FROM contact_campaigns cc CROSS JOIN generate_series(1, 2) s")
        _sql(c, "INSERT INTO scheduled_actions (tenant_id, contact_campaign_id, kind, node_id, node_visit, event, "
                "payload, due_at, status, dedupe_key, campaign_id, outbound_message_id, attempts, created_at) "
                "SELECT om.tenant_id, om.contact_campaign_id, CASE WHEN om.id %% 2 = 0 THEN 'send' ELSE "
                "'timeout' END, om.node_id, 1, '', '{}', om.created_at, CASE WHEN om.id %% 10 = 0 THEN 'pending' "
                "ELSE 'done' END, 'a:' || om.id, NULL, om.id, 1, om.created_at FROM outbound_messages om")
        _sql(c, "INSERT INTO campaign_transitions (tenant_id, contact_campaign_id, from_node_id, to_node_id, event, "
                "node_visit, from_status, to_status, reason, detail, occurred_at, created_at) "
                "SELECT om.tenant_id, om.contact_campaign_id, om.node_id, 'email_follow', 'sent', 1, 'active', "
                "'active', '', '{}', om.created_at, om.created_at FROM outbound_messages om")
    with transaction.atomic(), connection.cursor() as c:
        # Five events per message: processed, delivered, open, click and, rarely, a spam report.
        _sql(c, "INSERT INTO message_events (tenant_id, outbound_message_id, webhook_delivery_id, provider, "
                "event_type, provider_event_id, dedupe_key, email, url, is_machine, bounce_type, reason, "
                "occurred_at, raw, created_at) SELECT om.tenant_id, om.id, 1 + om.id / 200, 'sendgrid', "
                "(ARRAY['processed','delivered','open','click','spamreport'])[CASE WHEN e = 5 AND om.id %% 500 "
                "<> 0 THEN 3 ELSE e END], 'ev' || om.id || '.' || e, 'k' || om.id || '.' || e, om.to_address, "
                "'', false, '', '', om.created_at + make_interval(secs => e * 60), "
                "'{\"ip\": \"10.0.0.1\", \"useragent\": \"Mozilla/5.0\"}', om.created_at "
                "FROM outbound_messages om CROSS JOIN generate_series(1, 5) e WHERE om.id <= %s", [n // 5])
        _sql(c, "INSERT INTO webhook_deliveries (kind, body, headers, payload_hash, signature_valid, status, "
                "event_count, error, attempts, received_at, processed_at) SELECT 'sendgrid_events', "
                "convert_to(repeat('[{\"event\": \"delivered\"}]', 400), 'UTF8'), '{}', md5(g::text) || md5(g::text), "
                "true, 'processed', 1000, '', 1, %s - make_interval(secs => g * 7), %s "
                "FROM generate_series(1, %s) g", [NOW, NOW, max(n // 1000, 1)])
    with connection.cursor() as c:
        for table in TABLES:
            _sql(c, f"VACUUM ANALYZE {table}")


def _best_ms(run: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _reads() -> dict[str, float]:
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    from campaigns.api.selectors import contact_campaign_list
    from messaging.models import MessageEvent, WebhookDelivery
    from outreach.admin import EstimatedCountPaginator
    from outreach.tenancy.models import Tenant

    tenant = Tenant.objects.get(slug="scale-3")
    admin = site._registry[MessageEvent]
    request = RequestFactory().get("/")

    def search() -> list:
        address = f"c{ADDRESS}@acme{ADDRESS % 997}.example"
        queryset, _ = admin.get_search_results(request, MessageEvent.objects.all(), address)
        return list(queryset.order_by("-id")[:50])

    return {
        "admin events, rare type in a tenant": _best_ms(lambda: list(
            MessageEvent.objects.filter(tenant_id=tenant.id, event_type="spamreport").order_by("-id")[:50])),
        "admin events, search by address": _best_ms(search),
        "API enrolment list, first page": _best_ms(lambda: list(
            contact_campaign_list(tenant=tenant).order_by("-created_at", "-id")[:51])),
        "admin webhook deliveries page": _best_ms(lambda: list(
            WebhookDelivery.objects.defer("body", "headers").order_by("-id")[:50])),
        "admin estimated count (events)": _best_ms(lambda: EstimatedCountPaginator(
            MessageEvent.objects.order_by("-id"), 50).count),
    }


def _ingest_rate(batches: int = 20, size: int = 1000) -> tuple[float, float]:
    """(new events/s, repeated events/s) through the processor's deduplicating bulk insert."""
    from django.db import transaction

    from messaging.webhooks.events import normalise_event
    from messaging.webhooks.store import events_insert

    base = int(NOW.timestamp())
    raw = [[{"email": f"x{b}-{i}@acme.example", "timestamp": base + i, "event": "delivered",
             "sg_event_id": f"bench-{b}-{i}", "sg_message_id": f"bench{b}.{i}"} for i in range(size)]
           for b in range(batches)]
    events = [[normalise_event(e, delivery_id=1) for e in batch] for batch in raw]
    rates = []
    for _ in range(2):  # new, then the same again (retries: all deduplicated)
        started = time.perf_counter()
        for batch in events:
            with transaction.atomic():
                events_insert(batch)
        rates.append(batches * size / (time.perf_counter() - started))
    return rates[0], rates[1]


def _claim_rate(due: int = 20_000, batch: int = 1000) -> float:
    from django.db import connection, transaction

    from campaigns import dispatcher
    from campaigns.interface import send_holds

    with connection.cursor() as c:
        c.execute("UPDATE scheduled_actions SET status = 'pending', due_at = %s - interval '1 minute' "
                  "WHERE id IN (SELECT id FROM scheduled_actions WHERE status = 'done' LIMIT %s)", [NOW, due])
    holds = send_holds()
    claimed, started = 0, time.perf_counter()
    while claimed < due:
        with transaction.atomic(), connection.cursor() as c:
            c.execute(dispatcher._CLAIM_SQL, {"now": NOW, "limit": batch, **holds.sql_params})
            got = len(c.fetchall())
        if not got:
            break
        claimed += got
    return claimed / (time.perf_counter() - started)


def _bytes_per_row() -> dict[str, float]:
    from django.db import connection

    out = {}
    with connection.cursor() as c:
        for table in TABLES:
            c.execute(f"SELECT count(*) FROM {table}")
            rows = c.fetchone()[0]
            c.execute("SELECT COALESCE(sum(pg_total_relation_size(i.inhrelid)), pg_total_relation_size(%s)) "
                      "FROM (SELECT %s::regclass AS t) x LEFT JOIN pg_inherits i ON i.inhparent = x.t", [table, table])
            size = c.fetchone()[0] or 0
            out[table] = size / rows if rows else 0.0
    return out


def run_size(n: int) -> dict[str, float]:
    started = time.perf_counter()
    _build(n)
    built = time.perf_counter() - started
    new_rate, retry_rate = _ingest_rate()
    figures = {"build (s)": built, "event ingest, new (events/s)": new_rate,
               "event ingest, retries (events/s)": retry_rate, "dispatcher claims/s": _claim_rate()}
    figures.update({f"{k} (ms)": v for k, v in _reads().items()})
    figures.update({f"bytes/row {k}": v for k, v in _bytes_per_row().items()})
    return figures


def main() -> None:
    results = {}
    for n in SIZES:
        print(f"building {n:,} events ...", flush=True)
        results[n] = run_size(n)
    names = list(results[SIZES[0]])
    header = "".join(f"{n:>16,}" for n in SIZES) + ("    ratio" if len(SIZES) > 1 else "")
    print(f"{'':44}{header}")
    for name in names:
        values = "".join(f"{results[n][name]:>16,.1f}" for n in SIZES)
        ratio = f"{results[SIZES[-1]][name] / results[SIZES[0]][name]:>9.2f}" if len(SIZES) > 1 and \
            results[SIZES[0]][name] else ""
        print(f"{name:44}{values}{ratio}")
