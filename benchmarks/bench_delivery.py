"""Delivery throughput (issue 19): sends/s and due-to-sent times against a provider that takes 0, 150 and
500 ms to answer, the provider connections opened, peak memory per worker process, and the invariants.

Run: `.venv/bin/python -m benchmarks.run_all bench_delivery` (its own database, see run_all.py).

How: with the real processes, as production runs them. This process starts
- the SendGrid simulator (`manage.py sendgrid_simulator --latency-ms L --latency-jitter-ms L/5
  --connection-setup-ms 20 --no-webhooks`), a subprocess;
- one Celery worker for the delivery queue (prefork, WORKER_PROCESSES processes, each with
  DELIVERY_CONCURRENCY request threads), a subprocess;
and runs the dispatcher loop itself (`dispatch_due` every DISPATCH_INTERVAL, what `run_dispatcher` does),
so back-pressure, the fair share, the broker, the claim, the request-start statement, the pooled client and
the engine feed are all measured together. Why not call the delivery service from threads: the figures
that matter (sends/s of a worker, its memory, its connections, lease behaviour) are a Celery worker's.

Per run: one tenant with 100x the due sends of each of four others (the fair-share measurement: the small
tenants' due-to-sent is printed apart), and opt-outs recorded while the run is under way. After each run:
no double send (the simulator's own record against the database), nothing started after an opt-out, no
send handed out twice, no lease expired. A last run moves the latency 150 -> 1,500 -> 150 ms (x10) mid-run.

The box is shared and has 2 cores: the simulator, the worker, PostgreSQL and this process compete for them.
Figures print with their ratio to the seed's 10x peak, 400 sends/s. Benchmarks never fail on speed.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_PEAK = 400.0  # sends/s: the seed's scale (50M+ touchpoints a month) at a 10x peak
BIG, SMALL, SMALL_TENANTS = 6000, 60, 4  # one tenant at 100x each of the others
WORKER_PROCESSES = int(os.environ.get("BENCH_DELIVERY_PROCESSES", "4"))
DELIVERY_CONCURRENCY = int(os.environ.get("BENCH_DELIVERY_CONCURRENCY", "64"))
DISPATCH_INTERVAL = 0.2
OPT_OUTS = 40
SLUG = "bench-delivery"
RUN_TIMEOUT = 120.0
PLAN = {
    "version": "1.0", "timezone": "UTC", "startNodeId": "email_intro",
    "nodes": [
        {"id": "email_intro", "type": "send", "channel": "email",
         "message": {"subject": "Quick idea", "text": "Hi,\n\nSee https://seller.example/demo for a demo.\n\nSam"},
         "transitions": [{"on": "reply", "to": "stop_done"}, {"on": "no_reply", "after": "P7D", "to": "stop_done"}]},
        {"id": "stop_done", "type": "stop", "reason": "completed"},
    ],
}


def _say(text: str) -> None:
    print(f"   {text}", flush=True)


def _x(rate: float) -> str:
    return f"{rate / SEED_PEAK:.2f}x of 400/s"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data ----------------------------------------------------------------------------------------------

def _cleanup() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants WHERE slug LIKE %s", [f"{SLUG}%"])
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        for sql in (
            "DELETE FROM message_events WHERE tenant_id = ANY(%s)",
            "DELETE FROM campaign_transitions WHERE tenant_id = ANY(%s)",
            "DELETE FROM scheduled_actions WHERE tenant_id = ANY(%s)",
            "DELETE FROM outbound_messages WHERE tenant_id = ANY(%s)",
            "DELETE FROM contact_unsubscribes WHERE tenant_id = ANY(%s)",
            "DELETE FROM communication_suppressions WHERE tenant_id = ANY(%s)",
            "UPDATE contact_campaigns SET current_plan_version_id = NULL WHERE tenant_id = ANY(%s)",
            "DELETE FROM campaign_plan_versions WHERE tenant_id = ANY(%s)",
            "DELETE FROM contact_campaigns WHERE tenant_id = ANY(%s)",
            "DELETE FROM contacts WHERE tenant_id = ANY(%s)",
            "DELETE FROM campaigns WHERE tenant_id = ANY(%s)",
        ):
            cursor.execute(sql, [ids])


def _purge_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("campaign_execution")


def _tenant(index: int, count: int) -> int:
    from campaigns.models import Campaign
    from campaigns.services import campaign_enrol_contacts
    from contacts.models import Contact
    from messaging.models import EmailSenderIdentity
    from outreach.tenancy.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(slug=f"{SLUG}-{index}", defaults={"name": f"Delivery bench {index}"})
    sender, _ = EmailSenderIdentity.objects.get_or_create(
        tenant=tenant, from_email=f"rep{index}@bench.example",
        defaults={"status": EmailSenderIdentity.Status.VERIFIED})
    campaign = Campaign.objects.create(tenant=tenant, name="bench", sender_identity=sender,
                                       status=Campaign.Status.ACTIVE)
    Contact.objects.bulk_create([Contact(tenant=tenant, first_name="C", email=f"t{index}c{i}@bench.example")
                                 for i in range(count)], batch_size=2000)
    ids = list(Contact.objects.filter(tenant=tenant).values_list("id", flat=True))
    campaign_enrol_contacts(campaign=campaign, contact_ids=ids, plan=PLAN)
    return tenant.pk


def _setup() -> tuple[int, list[int]]:
    started = time.perf_counter()
    big = _tenant(0, BIG)
    small = [_tenant(i, SMALL) for i in range(1, SMALL_TENANTS + 1)]
    _say(f"setup: {BIG + SMALL * SMALL_TENANTS:,} enrolled contacts, first sends queued, "
         f"in {time.perf_counter() - started:.1f} s")
    return big, small


def _park(tenants: list[int]) -> None:
    """The engine hands a send due at once straight to delivery; here every first send goes through the
    dispatcher instead: those hand-offs are purged and the sends wait, not due, until the workers are up."""
    from django.db import connection

    _purge_broker()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scheduled_actions SET status = 'pending', claimed_at = NULL, attempts = 0, "
                       "due_at = now() + interval '1 day' WHERE kind = 'send' AND tenant_id = ANY(%s)", [tenants])


def _make_due(big: int, small: list[int]) -> None:
    """The big tenant's burst due first, the others' a second later: in due order alone they would wait."""
    from django.db import connection

    from outreach import clock

    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scheduled_actions SET due_at = %s - interval '1 second' "
                       "WHERE kind = 'send' AND status = 'pending' AND tenant_id = %s", [now, big])
        cursor.execute("UPDATE scheduled_actions SET due_at = %s WHERE kind = 'send' AND status = 'pending' "
                       "AND tenant_id = ANY(%s)", [now, small])
        cursor.execute("ANALYZE scheduled_actions")


# --- processes ------------------------------------------------------------------------------------------

class _Processes:
    def __init__(self, latency_ms: float) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = Path(f"/tmp/bench_delivery_{os.getpid()}")
        self.logs.mkdir(exist_ok=True)
        env = {**os.environ, "SENDGRID_API_HOST": self.url, "DELIVERY_CONCURRENCY": str(DELIVERY_CONCURRENCY),
               "PYTHONUNBUFFERED": "1"}
        self.sim = self.worker = None
        try:
            self._start_all(latency_ms, env)
        except BaseException:
            self.stop()
            raise

    def _start_all(self, latency_ms: float, env: dict[str, str]) -> None:
        from django.conf import settings

        self.sim = self._start("sim", [
            sys.executable, "manage.py", "sendgrid_simulator", "--port", str(self.port), "--no-webhooks",
            "--any-sender", "--api-key", settings.SENDGRID_API_KEY, "--latency-ms", str(latency_ms),
            "--latency-jitter-ms", str(latency_ms / 5), "--connection-setup-ms", "20",
            "--duplicate-rate", "0", "--changed-id-rate", "0", "--out-of-order-rate", "0",
            "--async-bounce-rate", "0"], env, r"SENDGRID_WEBHOOK_PUBLIC_KEY=")
        self.worker = self._start("worker", [
            sys.executable, "-m", "celery", "-A", "outreach", "worker", "-Q", "campaign_execution", "-P", "prefork",
            "-c", str(WORKER_PROCESSES), "-n", f"bench-delivery-{os.getpid()}@%h", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "--prefetch-multiplier", "1", "-l", "info"], env,
            r"ready\.", log_level_note=True)

    def _start(self, name: str, argv: list[str], env: dict[str, str], ready: str,
               log_level_note: bool = False) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.monotonic() + 60
        pattern = re.compile(ready)
        while True:
            text = (self.logs / f"{name}.log").read_text()
            if pattern.search(text) or (log_level_note and "celery@" in text and "ready" in text):
                return process
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                raise RuntimeError(f"{name} did not start:\n{text[-3000:]}")
            time.sleep(0.1)

    def worker_peak_rss_mb(self) -> list[float]:
        """VmHWM of each prefork child of the worker (the processes that send)."""
        children = Path(f"/proc/{self.worker.pid}/task/{self.worker.pid}/children").read_text().split()
        peaks = []
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return peaks

    def stop(self) -> None:
        for process in (self.worker, self.sim):
            if process is None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --- one run --------------------------------------------------------------------------------------------

@dataclass
class _Run:
    recovered: int = 0
    claimed: int = 0
    opted_out: list[int] = field(default_factory=list)  # contact ids
    phases: list[tuple[float, float]] = field(default_factory=list)  # (real time, latency ms)


def _opt_out_some(big: int, run: _Run) -> None:
    """Opt out contacts whose first mail is still queued, while the run is under way."""
    from messaging import compliance
    from messaging.models import OutboundMessage

    rows = list(OutboundMessage.objects.filter(tenant_id=big, status="queued").order_by("-id")
                .values_list("contact_id", "to_address")[:OPT_OUTS])
    for contact_id, address in rows:
        compliance.unsubscribe_record(tenant=big, channel="email", value=address, source="link_click")
        run.opted_out.append(contact_id)


def _open_count(tenants: list[int]) -> int:
    from messaging.models import OutboundMessage

    return OutboundMessage.objects.filter(tenant_id__in=tenants, status__in=["queued", "sending"],
                                          next_attempt_at__isnull=True).count()


def _latency_steps(procs: _Processes, run: _Run, started: float) -> list[threading.Timer]:
    """150 -> 1,500 ms 3 s after the start, back to 150 ms 10 s later: on timers, whatever the loop is doing."""
    from demo.processes import sim_post

    def step(latency: float) -> None:
        sim_post(procs.url, "/_sim/config", {"latency_ms": latency, "latency_jitter_ms": latency / 5})
        run.phases.append((time.monotonic() - started, latency))

    timers = [threading.Timer(at, step, args=(latency,)) for at, latency in ((3.0, 1500.0), (13.0, 150.0))]
    for timer in timers:
        timer.start()
    return timers


def _drive(big: int, small: list[int], procs: _Processes, run: _Run, x10: bool) -> float:
    from campaigns.dispatcher import dispatch_due

    tenants = [big, *small]
    started = time.monotonic()
    timers = _latency_steps(procs, run, started) if x10 else []
    opted = False
    while time.monotonic() - started < RUN_TIMEOUT:
        stats = dispatch_due(time_budget=2.0)
        run.recovered += stats.recovered
        run.claimed += stats.claimed
        if not opted and time.monotonic() - started > 1.0:
            _opt_out_some(big, run)
            opted = True
        if opted and len(run.phases) == len(timers) and _open_count(tenants) == 0:
            break
        time.sleep(DISPATCH_INTERVAL)
    return started


def _percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)

    def at(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))]

    return f"p50 {at(0.50):.2f} s, p95 {at(0.95):.2f} s, p99 {at(0.99):.2f} s"


def _figures(big: int, small: list[int], procs: _Processes, run: _Run, label: str) -> None:
    from django.db import connection

    from demo.processes import sim_get

    tenants = [big, *small]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT om.tenant_id, EXTRACT(EPOCH FROM om.sent_at - sa.due_at), EXTRACT(EPOCH FROM om.sent_at) "
            "FROM outbound_messages om JOIN scheduled_actions sa ON sa.outbound_message_id = om.id "
            "AND sa.kind = 'send' WHERE om.tenant_id = ANY(%s) AND om.status = 'sent'", [tenants])
        rows = cursor.fetchall()
        cursor.execute("SELECT status, count(*) FROM outbound_messages WHERE tenant_id = ANY(%s) GROUP BY 1",
                       [tenants])
        statuses = dict(cursor.fetchall())
        cursor.execute("SELECT EXTRACT(EPOCH FROM min(due_at)) FROM scheduled_actions WHERE kind = 'send' "
                       "AND tenant_id = ANY(%s)", [tenants])
        first_due = float(cursor.fetchone()[0])
    sent_times = [float(r[2]) for r in rows]
    span = max(sent_times) - first_due if sent_times else 0.0
    rate = len(rows) / span if span else 0.0
    # The steady rate: the middle 80% of the sends, without the ramp and the tail.
    sent_times.sort()
    lo, hi = int(len(sent_times) * 0.1), int(len(sent_times) * 0.9)
    steady = (hi - lo) / (sent_times[hi] - sent_times[lo]) if hi > lo and sent_times[hi] > sent_times[lo] else 0.0
    _say(f"[{label}] sent {len(rows):,} in {span:.1f} s: {rate:,.0f} sends/s ({_x(rate)}); steady (middle 80%) "
         f"{steady:,.0f} sends/s ({_x(steady)})")
    _say(f"[{label}] due -> sent, all: {_percentiles([float(r[1]) for r in rows])}")
    _say(f"[{label}] due -> sent, the big tenant: {_percentiles([float(r[1]) for r in rows if r[0] == big])}; "
         f"the 4 small tenants (1/100 each): {_percentiles([float(r[1]) for r in rows if r[0] != big])}")
    status = sim_get(procs.url, "/_sim/status")
    peaks = procs.worker_peak_rss_mb()
    _say(f"[{label}] provider connections opened: {status['connections_opened']} "
         f"({WORKER_PROCESSES} processes x {DELIVERY_CONCURRENCY} threads); peak RSS per worker process: "
         + ", ".join(f"{p:.0f} MB" for p in peaks))
    _say(f"[{label}] outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
         + f"; ambiguous (unknown) {statuses.get('unknown', 0)}; dispatcher handed out {run.claimed:,}, "
         f"re-dispatched after a lease expiry {run.recovered}")
    _check_invariants(tenants, procs, run, label)


def _check_invariants(tenants: list[int], procs: _Processes, run: _Run, label: str) -> None:
    from collections import Counter

    from django.db import connection

    from demo.processes import sim_get
    from messaging.models import ContactUnsubscribe, OutboundMessage

    failures: list[str] = []
    mails = sim_get(procs.url, "/_sim/messages", timeout=120)["messages"]
    at_sim = Counter((m.get("custom_args") or {}).get("outbound_message_id") for m in mails)
    doubles = [k for k, n in at_sim.items() if n > 1]
    if doubles:
        failures.append(f"double send: {len(doubles)} outbound messages reached the simulator twice: {doubles[:5]}")
    ours = {str(i) for i in OutboundMessage.objects.filter(tenant_id__in=tenants, status__in=["sent", "unknown"])
            .values_list("id", flat=True)}
    if set(at_sim) - ours:
        failures.append(f"the simulator got {len(set(at_sim) - ours)} mails not marked sent or unknown")
    if ours - set(at_sim):
        failures.append(f"{len(ours - set(at_sim))} messages marked sent/unknown never reached the simulator")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM outbound_messages om JOIN contact_unsubscribes u ON u.tenant_id = om.tenant_id "
            "AND u.channel = 'email' AND u.channel_value = om.to_address "
            "WHERE om.tenant_id = ANY(%s) AND om.send_started_at > u.created_at", [tenants])
        after_opt_out = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM scheduled_actions WHERE kind = 'send' AND tenant_id = ANY(%s) "
                       "AND attempts > 1", [tenants])
        twice = cursor.fetchone()[0]
    if after_opt_out:
        failures.append(f"{after_opt_out} mails started after their address opted out")
    if twice:
        failures.append(f"{twice} sends handed out more than once")
    if run.recovered:
        failures.append(f"{run.recovered} leases expired and were dispatched again")
    opted = ContactUnsubscribe.objects.filter(tenant_id__in=tenants).count()
    verdict = "OK" if not failures else "FAILED: " + "; ".join(failures)
    _say(f"[{label}] invariants ({len(mails):,} mails at the simulator, {opted} opt-outs mid-run): {verdict}")


def _run(latency_ms: float, label: str, *, x10: bool = False) -> None:
    _purge_broker()
    _cleanup()
    big, small = _setup()
    _park([big, *small])
    procs = _Processes(latency_ms)
    try:
        run = _Run()
        _make_due(big, small)
        _drive(big, small, procs, run, x10)
        if run.phases:
            _say(f"[{label}] latency steps (s after start, ms): {run.phases}")
        _figures(big, small, procs, run, label)
        if x10:
            _x10_phases(big, small, run)
    finally:
        procs.stop()


def _x10_phases(big: int, small: list[int], run: _Run) -> None:
    """Sends/s before, during and after the x10 latency."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT EXTRACT(EPOCH FROM min(due_at)) FROM scheduled_actions WHERE kind = 'send' "
                       "AND tenant_id = ANY(%s)", [[big, *small]])
        start = float(cursor.fetchone()[0]) + 1.0  # the small tenants' due time, about the loop's start
        cursor.execute("SELECT EXTRACT(EPOCH FROM sent_at) FROM outbound_messages WHERE tenant_id = ANY(%s) "
                       "AND status = 'sent'", [[big, *small]])
        times = sorted(float(r[0]) - start for r in cursor.fetchall())
    edges = [0.0, *[t for t, _ in run.phases], times[-1] if times else 0.0]
    for (a, b), latency in zip(zip(edges, edges[1:], strict=False), [150.0, *[lat for _, lat in run.phases]],
                               strict=False):
        n = sum(1 for t in times if a <= t < b)
        rate = n / (b - a) if b > a else 0.0
        _say(f"[x10] {a:5.1f}-{b:5.1f} s at {latency:.0f} ms: {n:,} sent, {rate:,.0f} sends/s ({_x(rate)})")


def main() -> None:
    started = time.perf_counter()
    only = os.environ.get("BENCH_DELIVERY_LATENCIES")
    latencies = [float(x) for x in only.split(",") if x != "x10"] if only else [0.0, 150.0, 500.0]
    for latency in latencies:
        _run(latency, f"{latency:.0f} ms")
    if not only or "x10" in only.split(","):
        _run(150.0, "150 -> 1500 -> 150 ms", x10=True)
    _cleanup()
    _say(f"total bench time {time.perf_counter() - started:.1f} s")
