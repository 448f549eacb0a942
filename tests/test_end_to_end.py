"""End to end: the real processes (web server, Celery worker, dispatcher, SendGrid simulator) on the test
database and a fast virtual clock, 20 contacts planned by the offline planner, run to the end.

The simulator plays scripted recipients by their address (reply@ answers with interest, stop@ asks to stop,
unsub@ unsubscribes, bounce@ hard-bounces, spam@ reports spam, ooo@ sends an out-of-office auto-reply,
machine@ only gets machine opens) and random ones for the rest, and it posts signed event batches with
duplicates, changed-id duplicates and late bounces, as SendGrid does. demo/processes.py, demo/progress.py
and demo/invariants.py are the same harness `make demo` uses; the checks are demo/invariants.py's.

The processes use a Redis database of their own, derived from TEST_REDIS_URL (its number minus one, so 11
for the default 12; set TEST_E2E_REDIS_URL to choose): its Celery queues and clock epoch are flushed at the
start, and the other pytest-xdist worker's tasks never reach this worker.

The fast tests at the end prove that each invariant check reports the failure it exists for.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from campaigns.tests.factories import ContactCampaignFactory
from demo import invariants, metrics_check, processes, progress
from demo.scenario import (
    SHORT_RUN_CLOCK_SPEED,
    SHORT_RUN_SIMULATOR_SEED,
    ClockAnchor,
    virtual_start_before_monday,
    write_sample_contacts,
)
from messaging.interface import OutboundMessage
from messaging.tests.factories import (
    ContactUnsubscribeFactory,
    InboundMessageFactory,
    MessageEventFactory,
    OutboundMessageFactory,
)
from tests.redis_for_runs import exclusive_redis_for_run

CLOCK_SPEED = SHORT_RUN_CLOCK_SPEED
RUN_TIMEOUT_SECONDS = 110.0
SETUP_REAL_SECONDS = 10.0
LOCK_KEY = "outreach:e2e:owner"


def _e2e_redis_url() -> str:
    explicit = os.environ.get("TEST_E2E_REDIS_URL")
    if explicit:
        return explicit
    # Below the base, not below this worker's own database: xdist workers take base, base + 1, ...
    parts = urlsplit(settings.TEST_REDIS_BASE_URL)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db - 1 if db > 0 else 1}"))


@pytest.fixture
def e2e_redis():
    with exclusive_redis_for_run(_e2e_redis_url(), lock_key=LOCK_KEY, what="end-to-end run",
                                 env_name="TEST_E2E_REDIS_URL") as url:
        yield url


@dataclass
class _Run:
    report: invariants.InvariantReport
    snap: progress.Snapshot
    mails: list[dict]


def _demo_config(tmp_path: Path, redis_url: str) -> processes.DemoConfig:
    config = processes.DemoConfig(
        database_url=processes.database_url_from_settings(connection.settings_dict), redis_url=redis_url,
        web_port=processes.free_port(), sim_port=processes.free_port(), clock_speed=CLOCK_SPEED,
        log_dir=tmp_path / "logs", worker_concurrency=4, dispatcher_interval=0.1, web_server="gunicorn",
        sim_seed=SHORT_RUN_SIMULATOR_SEED, sim_args=["--flush-interval", "0.3"],
    )
    config.generate_webhook_keys()
    return config


def _anchor_clock(config: processes.DemoConfig) -> ClockAnchor:
    # Set back by the time start-up and seeding take, so the first mails go out near a Monday morning.
    virtual_start = virtual_start_before_monday(speed=CLOCK_SPEED, setup_real_seconds=SETUP_REAL_SECONDS)
    out = processes.run_python_module(config, ["demo.steps", "anchor-clock", "--virtual-start", str(virtual_start)])
    return ClockAnchor(**json.loads(out.splitlines()[-1]))


def _run_to_the_end(config: processes.DemoConfig, anchor: ClockAnchor, csv_path: Path) -> _Run:
    """Start the system, seed the 20 contacts, wait until the run settles, check the invariants."""
    with (config.log_dir / "progress.log").open("a") as progress_log, \
            processes.ProcessGroup(log_dir=config.log_dir, env=config.env()) as group:
        processes.start_system(group, config, beat=False)
        seed_argv = ["demo.steps", "seed", "--csv", str(csv_path)]
        seed = json.loads(processes.run_python_module(config, seed_argv, log_name="seed").splitlines()[-1])
        assert seed["imported_rows"] == 20 and seed["sender_status"] == "verified", seed
        assert len(seed["contact_campaign_ids"]) == 20
        settled, snap, why = progress.wait_until_settled(
            sim_url=config.sim_url, anchor=anchor, timeout=RUN_TIMEOUT_SECONDS, group=group, progress_every=1.0,
            progress=lambda snap, why: print(f"{time.strftime('%H:%M:%S')} {snap.line()} | {why}", file=progress_log,
                                             flush=True),
        )
        assert settled, f"not finished after {RUN_TIMEOUT_SECONDS:.0f}s: {why}\n{progress.stuck_enrolments()}\n" \
                        f"logs in {config.log_dir}"
        report = invariants.check_invariants(anchor=anchor, sim_url=config.sim_url, tenant_id=seed["tenant_id"])
        # The rollups agree with the raw events (analytics_verify) and with the simulator's own counts.
        rollup_failures, rollup_checked = metrics_check.rollup_failures(sim_url=config.sim_url)
        report.failures += rollup_failures
        report.checked.update(rollup_checked)
        mails = processes.sim_get(config.sim_url, "/_sim/messages")["messages"]
    return _Run(report=report, snap=snap, mails=mails)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_running_system_stops_on_replies_honours_opt_outs_and_sends_everything_once(tmp_path, e2e_redis):
    config = _demo_config(tmp_path, e2e_redis)
    scripted = write_sample_contacts(tmp_path / "contacts.csv")
    run = _run_to_the_end(config, _anchor_clock(config), tmp_path / "contacts.csv")

    # No double sends, every webhook event stored once, no mail after an opt-out or a reply, all final.
    assert run.report.failures == [], "\n".join(run.report.failures)
    assert run.report.checked["webhook events posted (originals)"] > 40
    assert len(run.mails) == run.snap.sent >= 20

    # Every scripted recipient led to what it stands for: replies end their enrolments (a stop request as a
    # policy stop and an opt-out), opt-outs are recorded and stop, an out-of-office is no reply, machine opens
    # are no engagement; everyone else is final too and nothing is left queued.
    scripted_report = invariants.check_scripted_recipients(scripted)
    assert scripted_report.failures == [], "\n".join(scripted_report.failures)


# --- the checks themselves: each one reports what it is for --------------------------------------------------


def _real_time_anchor() -> ClockAnchor:
    now = time.time()
    return ClockAnchor(real_start=now, virtual_start=now, speed=1.0)


def _sent(cc, *, node_id: str = "email_intro", at: dt.datetime, status: str = "sent", **fields) -> OutboundMessage:
    return OutboundMessageFactory(tenant=cc.tenant, contact_campaign=cc, contact=cc.contact, node_id=node_id,
                                  node_visit=1, status=status, claimed_at=at, send_started_at=at, sent_at=at,
                                  **fields)


@pytest.mark.django_db
def test_invariant_check_reports_a_node_visit_sent_twice():
    cc = ContactCampaignFactory(status="completed")
    now = dt.datetime.now(dt.UTC)
    _sent(cc, at=now)
    _sent(cc, at=now + dt.timedelta(minutes=5))

    report = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None)

    assert any(f.startswith(f"double send: contact campaign {cc.pk} node email_intro visit 1") for f in report.failures)


@pytest.mark.django_db
def test_invariant_check_reports_a_mail_claimed_after_the_address_unsubscribed_and_not_one_before():
    cc = ContactCampaignFactory(status="stopped")
    address = cc.contact.email
    now = dt.datetime.now(dt.UTC)
    before = _sent(cc, at=now - dt.timedelta(hours=1), to_address=address)
    ContactUnsubscribeFactory(tenant=cc.tenant, channel_value=address)
    after = _sent(cc, node_id="email_bump", at=now + dt.timedelta(hours=1), to_address=address)

    failures = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None).failures

    opt_out = [f for f in failures if f.startswith("sent to an opted-out address")]
    assert len(opt_out) == 1 and f"message {after.pk} " in opt_out[0], failures
    assert not any(f"message {before.pk} " in f for f in failures)


@pytest.mark.django_db
def test_invariant_check_reports_a_mail_sent_after_a_human_reply():
    cc = ContactCampaignFactory(status="completed")
    now = dt.datetime.now(dt.UTC)
    first = _sent(cc, at=now - dt.timedelta(days=1))
    InboundMessageFactory(tenant=cc.tenant, outbound_message=first, processed_at=now)
    late = _sent(cc, node_id="email_bump", at=now + dt.timedelta(hours=2))

    failures = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None).failures

    assert any(f.startswith(f"sent after a reply: message {late.pk} ") for f in failures), failures


@pytest.mark.django_db
def test_invariant_check_reports_a_mail_sent_inside_the_contacts_quiet_hours_and_not_one_outside():
    """The issue's case: 06:17 in Sydney against quiet hours 20:00-08:00."""
    sydney = ZoneInfo("Australia/Sydney")
    cc = ContactCampaignFactory(status="completed", plan_json={"timezone": "Australia/Sydney",
                                                               "quietHours": {"start": "20:00", "end": "08:00"}})
    inside = _sent(cc, at=dt.datetime(2026, 3, 10, 6, 17, tzinfo=sydney))
    outside = _sent(cc, node_id="email_bump", at=dt.datetime(2026, 3, 10, 10, 0, tzinfo=sydney))

    failures = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None).failures

    quiet = [f for f in failures if f.startswith("sent inside quiet hours")]
    assert len(quiet) == 1 and f"message {inside.pk} " in quiet[0], failures
    assert not any(f"message {outside.pk} " in f for f in failures)


@pytest.mark.django_db
def test_invariant_check_reports_an_enrolment_that_is_not_final():
    cc = ContactCampaignFactory(status="active", current_node_id="email_bump")

    failures = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None).failures

    assert failures == [f"contact campaign {cc.pk} ({cc.contact.email}) is active at node email_bump, not final"]


@pytest.mark.django_db
def test_invariant_check_reports_an_unknown_message_whose_events_are_stored_and_not_one_without():
    cc = ContactCampaignFactory(status="completed")
    now = dt.datetime.now(dt.UTC)
    settled_by_events = _sent(cc, at=now, status="unknown")
    MessageEventFactory(tenant=cc.tenant, outbound_message=settled_by_events, event_type="delivered")
    _sent(cc, node_id="email_bump", at=now, status="unknown")  # no event yet: unknown is right

    report = invariants.check_invariants(anchor=_real_time_anchor(), sim_url=None)

    assert report.failures == [f"message {settled_by_events.pk} to {settled_by_events.to_address} is still unknown "
                               "although provider events for it are stored"]
    assert report.failed_sections == {invariants.UNKNOWN_SETTLED: 1}


def test_webhook_comparison_reports_lost_and_doubled_events_and_ignores_the_simulators_copies():
    def row(email: str, kind: str, ts: int, copy: str = "original", status: str = "delivered") -> dict:
        return {"event": {"email": email, "event": kind, "timestamp": ts}, "copy": copy,
                "delivery_status": status, "status_code": 200 if status == "delivered" else 403}

    posted = [row("a@x.example", "delivered", 100), row("a@x.example", "delivered", 100, copy="changed_id"),
              row("b@x.example", "open", 200), row("c@x.example", "click", 300),
              row("d@x.example", "bounce", 400, status="failed")]
    stored = [("a@x.example", "delivered", 100, ""), ("b@x.example", "open", 200, ""),
              ("b@x.example", "open", 200, "")]
    report = invariants.InvariantReport()

    invariants.webhook_event_differences(posted=posted, stored=stored, report=report)

    assert report.failures == [
        "webhook: 1 events never accepted by the web server: failed (HTTP 403)",
        "webhook event lost: ('c@x.example', 'click', 300, '') posted, stored 0 of 1",
        "webhook event stored twice: ('b@x.example', 'open', 200, '') stored 2 times, posted 1",
    ]
