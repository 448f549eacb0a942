"""The dispatcher on the real PostgreSQL and Redis: batched claims, races, leases, the loop command."""
from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from campaigns import dispatcher
from campaigns.dispatcher import claim_due_batch, dispatch_due, recover_leases
from campaigns.holds import send_holds
from campaigns.models import CampaignTransition, ContactCampaign, ScheduledAction
from campaigns.services import contact_campaign_handle_event, scheduled_actions_run
from campaigns.tests.factories import (
    ContactCampaignFactory,
    freeze_clock,
    purge_queues,
    queued_tasks,
    started_contact_campaign,
)
from messaging.models import OutboundMessage
from outreach import clock as real_clock
from outreach.testing import child_process_env

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


def make_actions(cc: ContactCampaign, count: int, *, due_at: dt.datetime, kind: str = "timeout",
                 prefix: str = "a") -> list[ScheduledAction]:
    return ScheduledAction.objects.bulk_create([
        ScheduledAction(tenant_id=cc.tenant_id, contact_campaign=cc, campaign_id=cc.campaign_id, kind=kind,
                        node_id="email_intro", node_visit=1, event="no_open" if kind == "timeout" else "",
                        payload={"transition_index": 2}, due_at=due_at, dedupe_key=f"{prefix}:{cc.pk}:{i}")
        for i in range(count)
    ], batch_size=1000)


def published_ids(task: str = "campaign_execution.run_actions") -> list[int]:
    return [i for name, args in queued_tasks() if name == task for i in args[0]]


@pytest.mark.django_db
def test_due_rows_are_claimed_in_batches_and_handed_over_many_ids_per_message(django_capture_on_commit_callbacks):
    cc = ContactCampaignFactory()
    due = make_actions(cc, 1200, due_at=T0 - dt.timedelta(minutes=1))
    future = make_actions(cc, 5, due_at=T0 + dt.timedelta(hours=1), prefix="f")
    with django_capture_on_commit_callbacks(execute=True):
        stats = dispatch_due(now=T0, batch_size=500)
    assert stats.claimed == 1200
    messages = queued_tasks()
    assert [len(args[0]) for _, args in messages] == [500, 500, 200]
    assert {name for name, _ in messages} == {"campaign_execution.run_actions"}
    assert sorted(published_ids()) == sorted(a.pk for a in due)
    claimed = ScheduledAction.objects.filter(pk__in=[a.pk for a in due])
    assert set(claimed.values_list("status", "attempts", "claimed_at").distinct()) == {("claimed", 1, T0)}
    assert set(ScheduledAction.objects.filter(pk__in=[a.pk for a in future]).values_list("status", flat=True)) == {
        "pending"}


@pytest.mark.django_db
def test_sends_go_straight_to_delivery_with_outbound_ids(monkeypatch, django_capture_on_commit_callbacks):
    freeze_clock(monkeypatch, dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC))  # quiet hours: the send waits
    cc = started_contact_campaign()
    message = OutboundMessage.objects.get(contact_campaign=cc)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch_due(now=dt.datetime(2026, 3, 3, 15, 31, tzinfo=dt.UTC))
    assert queued_tasks() == [("campaign_execution.deliver_messages", [[message.pk]])]
    assert ScheduledAction.objects.get(contact_campaign=cc, kind="send").status == "claimed"


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_on_the_same_due_rows_never_claim_one_twice():
    cc = ContactCampaignFactory()
    rows = make_actions(cc, 3000, due_at=T0 - dt.timedelta(minutes=1))
    holds = send_holds()
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            claimed = 0
            while True:
                stats = claim_due_batch(now=T0, holds=holds, batch_size=100, publish_chunk=100)
                claimed += stats.claimed
                if stats.claimed == 0:
                    break
            counts.append(claimed)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = published_ids()
    assert len(ids) == len(set(ids)) == 3000  # every row handed over exactly once
    assert sorted(ids) == sorted(r.pk for r in rows)
    assert sum(counts) == 3000 and all(c > 0 for c in counts)  # both really took part
    assert not ScheduledAction.objects.exclude(status="claimed", attempts=1).exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_timer_at_once_move_the_campaign_once(monkeypatch):
    frozen = freeze_clock(monkeypatch, T0)
    cc = started_contact_campaign()
    cc.refresh_from_db()
    from campaigns.engine import EngineEvent

    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="sent", occurred_at=T0, node_id="email_intro", node_visit=1))
    frozen.advance(days=3, minutes=1)
    dispatch_due(now=frozen.now)
    timer = ScheduledAction.objects.get(contact_campaign=cc, event="no_open")
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            scheduled_actions_run(action_ids=[timer.pk])
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert CampaignTransition.objects.filter(contact_campaign=cc, event="no_open").count() == 1
    assert OutboundMessage.objects.filter(contact_campaign=cc, node_id="email_bump").count() == 1
    assert ContactCampaign.objects.get(pk=cc.pk).node_visit == 2


@pytest.mark.django_db
def test_expired_leases_are_dispatched_again_and_finished_sends_are_closed(django_capture_on_commit_callbacks):
    cc = ContactCampaignFactory()
    lease = dt.timedelta(seconds=dispatcher.lease_seconds())
    stale_timer, fresh_timer, worn_out = make_actions(cc, 3, due_at=T0 - 2 * lease)
    sent = OutboundMessage.objects.create(tenant_id=cc.tenant_id, contact_campaign=cc, dedupe_key="m1",
                                          to_address="a@b.example", status="sent", sent_at=T0)
    queued = OutboundMessage.objects.create(tenant_id=cc.tenant_id, contact_campaign=cc, dedupe_key="m2",
                                            to_address="a@b.example")
    send_done, send_again = make_actions(cc, 2, due_at=T0 - 2 * lease, kind="send", prefix="s")
    ScheduledAction.objects.filter(pk=send_done.pk).update(outbound_message_id=sent.pk)
    ScheduledAction.objects.filter(pk=send_again.pk).update(outbound_message_id=queued.pk)
    old = T0 - lease - dt.timedelta(seconds=1)
    ScheduledAction.objects.filter(pk__in=[stale_timer.pk, send_done.pk, send_again.pk]).update(
        status="claimed", claimed_at=old, attempts=1)
    ScheduledAction.objects.filter(pk=worn_out.pk).update(status="claimed", claimed_at=old,
                                                          attempts=dispatcher.MAX_TIMER_ATTEMPTS)
    ScheduledAction.objects.filter(pk=fresh_timer.pk).update(status="claimed", claimed_at=T0, attempts=1)

    with django_capture_on_commit_callbacks(execute=True):
        stats = recover_leases(now=T0, holds=send_holds())
    assert (stats.recovered, stats.finished) == (2, 2)
    assert published_ids() == [stale_timer.pk]
    assert published_ids("campaign_execution.deliver_messages") == [queued.pk]
    by_id = {a.pk: a for a in ScheduledAction.objects.filter(contact_campaign=cc)}
    assert (by_id[stale_timer.pk].status, by_id[stale_timer.pk].attempts, by_id[stale_timer.pk].claimed_at) == (
        "claimed", 2, T0)
    assert by_id[send_done.pk].status == "done"
    assert by_id[send_again.pk].status == "claimed" and by_id[send_again.pk].attempts == 2
    assert by_id[worn_out.pk].status == "failed"
    assert (by_id[fresh_timer.pk].status, by_id[fresh_timer.pk].attempts) == ("claimed", 1)


@pytest.mark.django_db
def test_run_dispatcher_once_claims_due_rows():
    cc = ContactCampaignFactory()
    make_actions(cc, 3, due_at=real_clock.now() - dt.timedelta(minutes=1))
    call_command("run_dispatcher", "--once", "--batch-size", "2", verbosity=0)
    assert set(ScheduledAction.objects.filter(contact_campaign=cc).values_list("status", flat=True)) == {"claimed"}


@pytest.mark.django_db
def test_run_dispatcher_survives_database_and_redis_errors_and_reconnects(monkeypatch, caplog):
    import os

    from django.db import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from campaigns.management.commands import run_dispatcher

    cc = ContactCampaignFactory()
    make_actions(cc, 3, due_at=real_clock.now() - dt.timedelta(minutes=1))
    real_pass = run_dispatcher.dispatch_due
    outages = [OperationalError("terminating connection due to administrator command"),
               RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")]
    dropped: list[int] = []

    def flaky_pass(**kwargs):
        if outages:
            raise outages.pop(0)
        stats = real_pass(**kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the outage is over: stop after this pass
        return stats

    monkeypatch.setattr(run_dispatcher, "dispatch_due", flaky_pass)
    monkeypatch.setattr(run_dispatcher, "_drop_connection", lambda: dropped.append(1))
    monkeypatch.setattr(run_dispatcher, "close_old_connections", lambda: None)  # keeps the test's transaction
    call_command("run_dispatcher", "--interval", "0.01", "--error-backoff", "0.01", verbosity=0)

    assert set(ScheduledAction.objects.filter(contact_campaign=cc).values_list("status", flat=True)) == {"claimed"}
    assert len(dropped) == 2  # a fresh connection after each failed pass
    assert "OperationalError" in caplog.text and "ConnectionError" in caplog.text
    assert "recovered after 2 failed pass(es)" in caplog.text


@pytest.mark.django_db
def test_run_dispatcher_once_lets_a_database_error_out(monkeypatch):
    from django.db import OperationalError

    from campaigns.management.commands import run_dispatcher

    def down(**kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(run_dispatcher, "dispatch_due", down)
    with pytest.raises(OperationalError):
        call_command("run_dispatcher", "--once", verbosity=0)


@pytest.mark.django_db
def test_run_dispatcher_lets_a_bug_out_instead_of_retrying_it_as_an_outage(monkeypatch):
    # A ProgrammingError (a migration not run, a broken statement) is no outage: the loop must not hide it.
    from django.db import ProgrammingError

    from campaigns.management.commands import run_dispatcher

    calls: list[int] = []

    def broken(**kwargs):
        calls.append(1)
        raise ProgrammingError('relation "scheduled_actions" does not exist')

    monkeypatch.setattr(run_dispatcher, "dispatch_due", broken)
    with pytest.raises(ProgrammingError):
        call_command("run_dispatcher", "--interval", "0.01", "--error-backoff", "0.01", verbosity=0)
    assert calls == [1]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_dispatcher_loops_until_sigterm_and_exits_cleanly():
    cc = ContactCampaignFactory()
    make_actions(cc, 3, due_at=real_clock.now() - dt.timedelta(minutes=1))
    env = child_process_env()
    process = subprocess.Popen([sys.executable, "manage.py", "run_dispatcher", "--interval", "0.2", "-v", "2"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        seen = []
        for line in process.stdout:  # one line per pass; wait for the pass that claimed our rows
            seen.append(line)
            if line.startswith("claimed=") and line.split()[0] != "claimed=0" or len(seen) > 50:
                break
        assert any(line.startswith("claimed=3 ") for line in seen), seen
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "dispatcher stopped" in output


def test_the_beat_schedule_runs_the_dispatcher_with_an_expiry():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "campaign_execution.dispatch_due")
    assert entry["options"]["expires"] <= 1.5 * entry["schedule"] + 0.01
    from outreach.celery import app

    app.loader.import_default_modules()
    assert {"campaign_execution.dispatch_due", "campaign_execution.run_actions"} <= set(app.tasks)
    assert app.tasks["campaign_execution.run_actions"].acks_late
