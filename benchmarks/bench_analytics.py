"""Analytics (issue 14): rollup freshness at the webhook benchmark's rate, and the metrics API at 100M events.

1. Freshness: 1,000-event webhook deliveries processed at up to 5,000 events/s (the webhook goal) while a
   second thread runs the rollup passes as the `analytics.rollup_pending` task does; the rollup lag (age of
   the oldest event not yet counted, `analytics.selectors.rollup_lag_seconds`) is sampled every 0.25 s.
   Goal: p95 under 10 s.
2. Scale: rollup rows equivalent to 100M events (their counts sum to 100M) written straight into the rollup
   tables with generate_series, then each metrics endpoint called through the full Django stack (API key,
   middleware, JSON); p50 / p95 per endpoint. Goal: p95 under 50 ms.
Sizes scale with BENCH_ANALYTICS_SCALE (1.0: 400 campaigns x 60 days x 5 steps x 2 senders, 40,000 contacts).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
import uuid

import orjson

BATCH = 1000
FRESH_BATCHES = int(os.environ.get("BENCH_ANALYTICS_BATCHES", "40"))
RATE = 5000.0
SCALE = float(os.environ.get("BENCH_ANALYTICS_SCALE", "1.0"))
CALLS = int(os.environ.get("BENCH_ANALYTICS_CALLS", "60"))


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _roll_until(stop: threading.Event) -> None:
    from django.db import connection

    from analytics.rollups import rollups_catch_up

    try:
        while not stop.is_set():
            if not rollups_catch_up():
                time.sleep(0.2)
        rollups_catch_up()
    finally:
        connection.close()


def freshness() -> None:
    from django.test import Client, override_settings

    from analytics.selectors import rollup_lag_seconds
    from benchmarks.bench_webhooks import _events, _post_all, _setup
    from messaging.webhooks.processing import webhook_deliveries_process
    from simulators.sendgrid.signing import generate_key_pair

    tenant, campaign, messages = _setup(BATCH * FRESH_BATCHES // 5)
    events = _events(messages, campaign.id, int(time.time()) - 7200)
    bodies = [orjson.dumps(events[i:i + BATCH]) for i in range(0, len(events), BATCH)]
    key, public_key = generate_key_pair()
    with override_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=public_key, SENDGRID_WEBHOOK_MAX_AGE_SECONDS=3600):
        _, ids = _post_all(Client(), key, bodies)
    stop = threading.Event()
    roller = threading.Thread(target=_roll_until, args=(stop,))
    lags: list[float] = []
    started = time.perf_counter()
    roller.start()
    for n, delivery_id in enumerate(ids):
        webhook_deliveries_process(delivery_ids=[delivery_id], absorb_pending=0)
        lags.append(rollup_lag_seconds())
        ahead = (n + 1) * BATCH / RATE - (time.perf_counter() - started)
        while ahead > 0:  # never faster than RATE; sample the lag while waiting
            time.sleep(min(0.25, ahead))
            lags.append(rollup_lag_seconds())
            ahead = (n + 1) * BATCH / RATE - (time.perf_counter() - started)
    ingest_seconds = time.perf_counter() - started
    while rollup_lag_seconds() > 0:
        assert roller.is_alive(), "the rollup thread died (see its traceback above)"
        time.sleep(0.25)
        lags.append(rollup_lag_seconds())
    stop.set()
    roller.join()
    drained = time.perf_counter() - started
    print(f"   freshness: {len(events):,} events ingested in {ingest_seconds:.1f} s "
          f"({len(events) / ingest_seconds:,.0f} events/s, capped at {RATE:,.0f}); all counted after {drained:.1f} s")
    print(f"   rollup lag (oldest uncounted event), sampled: p50 {_p(lags, 50):.2f} s, p95 {_p(lags, 95):.2f} s, "
          f"max {max(lags):.2f} s (goal: p95 < 10 s)")

# (table, key columns, their values per generated row, FROM clause, events per count cell); {t} is the measured
# tenant, {c} its campaign, {sender} its sender: every other row belongs to made-up tenants and campaigns.
_FILL = [
    ("metrics_campaign_daily", "tenant_id, campaign_id, day, node_id, plan_source, sender_id",
     "CASE WHEN c = 0 THEN {t} ELSE 900000 + c % 10 END, CASE WHEN c = 0 THEN {c} ELSE 900000 + c END, "
     "DATE '2026-01-01' + d, 'node_' || s, 'ai', CASE WHEN c = 0 THEN {sender} ELSE 900000 + c % 20 END + x",
     "generate_series(0, {campaigns} - 1) c, generate_series(0, 59) d, generate_series(0, 4) s, "
     "generate_series(0, 1) x", 1),
    ("metrics_tenant_daily", "tenant_id, day",
     "CASE WHEN t = 0 THEN {t} ELSE 900000 + t END, DATE '2025-02-01' + d",
     "generate_series(0, 9) t, generate_series(0, 399) d", 1000),
    ("metrics_sender_daily", "tenant_id, day, sender_id",
     "CASE WHEN t = 0 THEN {t} ELSE 900000 + t END, DATE '2025-02-01' + d, "
     "CASE WHEN t = 0 AND s = 0 THEN {sender} ELSE 900000 + t * 100 + s END",
     "generate_series(0, 9) t, generate_series(0, 19) s, generate_series(0, 399) d", 50),
    ("metrics_domain_daily", "tenant_id, day, domain",
     "CASE WHEN t = 0 THEN {t} ELSE 900000 + t END, DATE '2026-01-01' + d, 'd' || dm || '.example'",
     "generate_series(0, 9) t, generate_series(0, {domains} - 1) dm, generate_series(0, 59) d", 1),
    ("metrics_contact_hourly", "tenant_id, contact_id, campaign_id, hour",
     "{t}, 1000000 + k, CASE WHEN k < 2134 THEN {c} ELSE 900000 + k % 400 END, "
     "TIMESTAMPTZ '2026-01-05 09:00+00' + (k % 24 + h * 24) * INTERVAL '1 hour'",
     "generate_series(0, {contacts}) k, generate_series(0, 9) h", 1),
]


def _fill(tenant_id: int, campaign_id: int, sender_id: int) -> int:
    from django.db import connection

    from analytics.metrics import COUNTS

    campaigns = max(1, int(400 * SCALE))
    # Campaign rows carry 100M events in all; the other tables hold made-up events in their own grain.
    n = max(1, int(100_000_000 / (campaigns * 60 * 5 * 2 * len(COUNTS))))
    names = {"t": tenant_id, "c": campaign_id, "sender": sender_id, "campaigns": campaigns,
             "domains": max(1, int(300 * SCALE)), "contacts": int(40_000 * SCALE)}
    rows = 0
    with connection.cursor() as cursor:
        for table, keys, values, source, weight in _FILL:
            started = time.perf_counter()
            counts = ", ".join([str(n * weight)] * len(COUNTS))
            cursor.execute(f"TRUNCATE {table}")
            cursor.execute(f"INSERT INTO {table} ({keys}, {', '.join(COUNTS)}) "
                           f"SELECT {values.format(**names)}, {counts} FROM {source.format(**names)}")
            rows += cursor.rowcount
            print(f"   {table}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        cursor.execute("ANALYZE")
        cursor.execute(f"SELECT sum({' + '.join(COUNTS)}) FROM metrics_campaign_daily")
        print(f"   events represented by metrics_campaign_daily: {int(cursor.fetchone()[0]):,}")
    return rows


def scale() -> None:
    from analytics.models import TenantAnalyticsSettings  # noqa: F401 - the tables exist (migrated)
    from campaigns.tests.factories import CampaignFactory
    from messaging.tests.factories import EmailSenderIdentityFactory
    from outreach.tenancy.models import Role
    from outreach.tenancy.tests.api_clients import api_client
    from outreach.tenancy.tests.factories import TenantFactory

    run = uuid.uuid4().hex[:8]  # the factories' sequences restart with each process; the bench database does not
    tenant = TenantFactory(slug=f"bench-analytics-{run}")
    sender = EmailSenderIdentityFactory(tenant=tenant, from_email=f"rep-{run}@seller.example")
    campaign = CampaignFactory(tenant=tenant, sender_identity=sender)
    started = time.perf_counter()
    rows = _fill(tenant.id, campaign.id, sender.id)
    print(f"   {rows:,} rollup rows written in {time.perf_counter() - started:.1f} s")
    client = api_client(tenant=tenant, role=Role.VIEWER)
    for label, url in (
        ("campaign, 60 days by day", f"/api/v1/metrics/campaigns/{campaign.id}?from=2026-01-01&to=2026-03-01"),
        ("campaign, 400 days by week", f"/api/v1/metrics/campaigns/{campaign.id}?from=2025-02-01&to=2026-03-07"
                                       "&granularity=week"),
        ("campaign, 7 days by hour", f"/api/v1/metrics/campaigns/{campaign.id}?from=2026-01-05&to=2026-01-11"
                                     "&granularity=hour"),
        ("tenant, 400 days by day", "/api/v1/metrics/tenant?from=2025-02-01&to=2026-03-07"),
        ("senders, 400 days", "/api/v1/metrics/senders?from=2025-02-01&to=2026-03-07"),
        ("domains, 30 days", "/api/v1/metrics/domains?from=2026-01-01&to=2026-01-30"),
    ):
        times = []
        for _ in range(CALLS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:300]
        print(f"   GET {label}: p50 {_p(times, 50):.1f} ms, p95 {_p(times, 95):.1f} ms ({CALLS} calls)")
    print("   goal: p95 < 50 ms whatever the raw table size")


def main() -> None:
    freshness()
    scale()
