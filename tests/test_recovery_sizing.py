"""Recovery in seconds, not minutes: the leases and sweeps that resume a killed worker's work, and the broker's
visibility timeout, hold the relations README "Recovery after a fault" states.

Each kind of work a worker can die in the middle of is found again by a database (or Redis) sweep: the
lease after which it counts as abandoned plus the sweep's interval is the worst wait, and must stay
within about a minute and a half of real time. The broker's visibility timeout is only the backstop and
must not hand out a task that is still running (acks_late) or still waiting out its countdown.
"""
from __future__ import annotations

import pytest
from django.conf import settings

from campaigns.ai_tasks import MAX_DEFER_COUNTDOWN_SECONDS
from messaging.webhooks.processing import PENDING_GRACE
from outreach.celery import app
from outreach.queues import TaskName

RESUME_WITHIN_SECONDS = 90


def _interval(task: TaskName) -> float:
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == str(task)]
    return float(entry["schedule"])


@pytest.mark.parametrize(("work", "lease_seconds", "sweep"), [
    ("a send claimed by a dead worker", lambda: settings.SENDING_LEASE.total_seconds(), TaskName.RECOVER_STALE_SENDS),
    ("a scheduled action claimed by a dead worker", lambda: settings.CAMPAIGN_ACTION_LEASE_SECONDS,
     TaskName.DISPATCH_DUE),
    ("a plan job of a dead worker", lambda: settings.PLAN_GENERATION_LEASE_SECONDS, TaskName.RECOVER_GENERATION_LEASES),
    ("a webhook delivery whose processing died", lambda: PENDING_GRACE.total_seconds(),
     TaskName.RETRY_WEBHOOK_DELIVERIES),
])
def test_a_killed_workers_work_is_found_again_within_about_a_minute(work, lease_seconds, sweep) -> None:
    worst = lease_seconds() + _interval(sweep)
    assert worst <= RESUME_WITHIN_SECONDS, f"{work}: up to {worst:.0f} s before it resumes"


def test_the_sending_lease_outlasts_a_live_requests_timeout() -> None:
    # A live request is never judged dead while it can still be answered (it would turn `unknown`).
    assert settings.SENDING_LEASE.total_seconds() >= 3 * settings.SENDGRID_REQUEST_TIMEOUT_SECONDS


def test_the_generation_lease_is_renewed_well_before_it_runs_out() -> None:
    assert settings.PLAN_GENERATION_SWEEP_SECONDS <= settings.PLAN_GENERATION_LEASE_SECONDS


def test_the_visibility_timeout_never_hands_out_a_running_or_waiting_task_twice() -> None:
    app.loader.import_default_modules()
    acks_late = {name: task.time_limit for name, task in app.tasks.items()
                 if not name.startswith("celery.") and task.acks_late}
    assert acks_late  # not vacuous
    longest = max(acks_late.values()) + MAX_DEFER_COUNTDOWN_SECONDS
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    slowest = max(acks_late, key=acks_late.get)
    assert visibility > longest, f"visibility_timeout {visibility} s <= {longest} s ({slowest})"
