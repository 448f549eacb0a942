"""The short chaos variant (`make test`): the real processes under a supervisor while the dispatcher and
beat are killed with -9 every 4 s and the provider answers bursts of 5xx and 429, then every invariant.

The same harness as `make chaos` (demo/chaos.py, demo/chaos_scenarios.py; docs/chaos.md), on pytest's test
database and a Redis database of its own (15 unless TEST_CHAOS_REDIS_URL names one; flushed before and
after). The scenarios that break PostgreSQL or Redis themselves need instances of their own and run only in
`make chaos`. Logs of a failed run are in pytest's tmp_path (`.../logs/progress.log` and one log per process).

The fast tests below prove the supervisor restarts what exits and the table says what failed.
"""
from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from demo import processes
from demo.chaos import ScenarioResult, format_table, run_scenario
from demo.chaos_scenarios import short_scenarios
from demo.scenario import SHORT_RUN_CLOCK_SPEED, SHORT_RUN_SIMULATOR_SEED, write_sample_contacts
from demo.supervisor import Supervisor
from tests.redis_for_runs import exclusive_redis_for_run

LOCK_KEY = "outreach:chaos:owner"
CHAOS_REDIS_DB = 15


def _chaos_redis_url() -> str:
    explicit = os.environ.get("TEST_CHAOS_REDIS_URL")
    if explicit:
        return explicit
    return urlunsplit(urlsplit(settings.TEST_REDIS_BASE_URL)._replace(path=f"/{CHAOS_REDIS_DB}"))


@pytest.fixture
def chaos_redis():
    with exclusive_redis_for_run(_chaos_redis_url(), lock_key=LOCK_KEY, what="chaos run",
                                 env_name="TEST_CHAOS_REDIS_URL") as url:
        yield url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_dispatcher_and_beat_and_provider_error_bursts_lose_nothing_and_send_nothing_twice(tmp_path,
                                                                                                chaos_redis):
    config = processes.DemoConfig(
        database_url=processes.database_url_from_settings(connection.settings_dict), redis_url=chaos_redis,
        web_port=processes.free_port(), sim_port=processes.free_port(), clock_speed=SHORT_RUN_CLOCK_SPEED,
        log_dir=tmp_path / "logs", worker_concurrency=4, dispatcher_interval=0.1, sim_seed=SHORT_RUN_SIMULATOR_SEED,
        sim_args=["--flush-interval", "0.3"],
    )
    config.generate_webhook_keys()
    write_sample_contacts(tmp_path / "contacts.csv")
    (scenario,) = short_scenarios()

    result = run_scenario(scenario, config=config, csv_path=tmp_path / "contacts.csv")

    assert result.failures == [], "\n".join(result.failures) + f"\nlogs in {config.log_dir}"
    assert result.passed
    # The faults really happened: both came back after every kill, the provider refused requests.
    assert result.restarts == "beat 8, dispatcher 8"
    assert any("provider 5xx" in fault for fault in result.faults)
    assert result.mails_sent >= 20 and result.events > 40
    assert set(result.sections) >= {"no double send", "no event lost or doubled", "nothing after an opt-out",
                                    "every enrolment final", "no unknown row settled by events"}


# --- the harness itself --------------------------------------------------------------------------------------


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_supervisor_restarts_a_process_killed_with_9_and_counts_it(tmp_path):
    with processes.ProcessGroup(log_dir=tmp_path, env=dict(os.environ)) as group:
        group.start("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
        first_pid = group.processes["sleeper"].popen.pid
        group.wait_log("sleeper", "up")
        with Supervisor(group, check_every=0.05, restart_delay=0.0) as supervisor:
            group.kill("sleeper")
            _wait_for(lambda: supervisor.restarts["sleeper"] == 1 and group.processes["sleeper"].alive)
            # The log of the restarted process is appended to, not truncated.
            _wait_for(lambda: (tmp_path / "sleeper.log").read_text().count("up") == 2)

        assert group.processes["sleeper"].popen.pid != first_pid
        assert supervisor.summary() == "sleeper 1"


def test_the_supervisor_does_not_restart_while_paused(tmp_path):
    with processes.ProcessGroup(log_dir=tmp_path, env=dict(os.environ)) as group:
        group.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
        with Supervisor(group, check_every=0.05, restart_delay=0.0) as supervisor:
            with supervisor.paused():
                group.kill("sleeper")
                time.sleep(0.5)
                assert supervisor.restarts["sleeper"] == 0
            _wait_for(lambda: supervisor.restarts["sleeper"] == 1)


def test_the_chaos_table_names_each_failed_invariant_and_the_restarts():
    failed = ScenarioResult(name="postgres restart", seconds=61.2, mails_sent=40, events=120,
                            sections=["no double send", "every enrolment final"],
                            failed_sections={"every enrolment final": 3}, failures=["..."], restarts="dispatcher 2",
                            recover_seconds=4.31, recoveries=2)
    passed = ScenarioResult(name="worker kill -9 loop", passed=True, sections=["no double send"])

    table = format_table([failed, passed]).splitlines()

    assert table[0].split(" | ")[0].strip() == "scenario"
    assert [cell.strip() for cell in table[2].split(" | ")] == [
        "postgres restart", "FAIL", "61", "40", "120", "1/2 ok: every enrolment final x3", "dispatcher 2",
        "4.3 (2 faults)"]
    assert [cell.strip() for cell in table[3].split(" | ")][:2] == ["worker kill -9 loop", "PASS"]
