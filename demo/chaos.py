"""One chaos scenario on the real processes, from a fresh database to a row of the table.

`run_scenario()` anchors the clock, starts the demo's processes (demo/processes.py) under a `Supervisor`
(restart on exit, as production runs them), seeds a short campaign (demo/steps.py, in a process of its
own), injects the scenario's faults on schedule while it polls progress, waits until the run settles (a
time bound fails the scenario rather than hanging), then checks the invariants (demo/invariants.py) and
the scenario's own checks. `format_table()` prints the results; `make chaos` (demo/run_chaos.py) runs every
scenario, tests/test_chaos.py the short variant.

Imports the apps' models: import it after django.setup().
"""
from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.db import Error as DatabaseError
from django.db import connection

from demo import invariants, progress
from demo.chaos_scenarios import WHEN_WAIT_SECONDS, Scenario, Step
from demo.chaos_services import OwnPostgres, OwnRedis
from demo.faults import FaultContext
from demo.processes import DemoConfig, DemoError, Interrupted, ProcessGroup, run_python_module, sim_post, start_system
from demo.scenario import ClockAnchor, virtual_start_before_monday
from demo.supervisor import Supervisor
from messaging.interface import MessageEvent

SETUP_REAL_SECONDS = 10.0
POLL_SECONDS = 0.5


@dataclass
class ScenarioResult:
    name: str
    passed: bool = False
    seconds: float = 0.0
    mails_sent: int = 0
    events: int = 0
    sections: list[str] = field(default_factory=list)
    failed_sections: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    restarts: str = "0"
    recover_seconds: float | None = None  # the slowest recovery after a fault
    recoveries: int = 0  # faults after which progress was seen
    faults: list[str] = field(default_factory=list)

    @property
    def invariants_cell(self) -> str:
        ok = len(self.sections) - len(self.failed_sections)
        cell = f"{ok}/{len(self.sections)} ok"
        if self.failed_sections:
            cell += ": " + ", ".join(f"{name} x{n}" for name, n in self.failed_sections.items())
        return cell


@dataclass
class _Recovery:
    """Progress counters when a fault ended; the first poll that shows more is the recovery."""
    since: float
    baseline: int


def _progress_count() -> int:
    """Everything that only grows while the system works: mails sent, events stored, deliveries processed,
    enrolments final."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT (SELECT count(*) FROM outbound_messages WHERE sent_at IS NOT NULL)
                 + (SELECT count(*) FROM message_events)
                 + (SELECT count(*) FROM webhook_deliveries WHERE status = 'processed')
                 + (SELECT count(*) FROM contact_campaigns
                    WHERE status IN ('completed', 'stopped', 'canceled', 'failed'))""")
        return cursor.fetchone()[0]


def _db_retry(call: Callable, *, attempts: int = 20, wait: float = 1.0):
    """Run a read, reconnecting while the database is away (the PostgreSQL scenario restarts it)."""
    for attempt in range(attempts):
        try:
            return call()
        except DatabaseError:
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(wait)
    return None


@dataclass
class _Driver:
    scenario: Scenario
    ctx: FaultContext
    result: ScenarioResult
    log: IO[str]
    pending: list[Step] = field(default_factory=list)
    recoveries: list[_Recovery] = field(default_factory=list)
    recovered: list[float] = field(default_factory=list)

    def run(self) -> tuple[bool, str]:
        """Inject on schedule, poll until settled after the last step or until the bound; (settled, why not)."""
        self.pending = sorted(self.scenario.steps, key=lambda s: s.at)
        started = time.monotonic()
        last_step = max((s.at for s in self.pending), default=0.0)
        deadline = started + last_step + self.scenario.settle_timeout
        confirmations, why = 0, ""
        while True:
            elapsed = time.monotonic() - started
            self._inject_due(elapsed)
            settled, why = self._poll(elapsed)
            confirmations = confirmations + 1 if settled and not self.pending else 0
            if confirmations >= 2:
                return True, ""
            if time.monotonic() > deadline:
                return False, why
            time.sleep(POLL_SECONDS)

    def _inject_due(self, elapsed: float) -> None:
        while self.pending and self.pending[0].at <= elapsed:
            step = self.pending[0]
            if step.when is not None and elapsed < step.at + WHEN_WAIT_SECONDS and not self._holds(step):
                return
            self.pending.pop(0)
            try:
                note = step.fault(self.ctx)
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected fails the scenario
                note = f"could not inject: {type(exc).__name__}: {exc}"
                self.result.failures.append(f"fault at {step.at:g}s {note}")
            self.result.faults.append(f"{elapsed:5.1f}s {note}")
            print(f"{time.strftime('%H:%M:%S')} fault: {note}", file=self.log, flush=True)
            if step.recovers:
                count = _db_retry(_progress_count, attempts=30)
                self.recoveries.append(_Recovery(since=time.monotonic(), baseline=count))

    def _holds(self, step: Step) -> bool:
        try:
            return step.when(self.ctx)
        except DatabaseError:
            connection.close()
            return False

    def _poll(self, elapsed: float) -> tuple[bool, str]:
        try:
            snap = progress.snapshot(anchor=self.ctx.anchor)
            count = _progress_count()
            settled, why = progress.is_settled(snap, sim_url=self.ctx.config.sim_url)
        except (DatabaseError, OSError) as exc:
            connection.close()
            return False, f"cannot read progress: {type(exc).__name__}: {exc}"
        now = time.monotonic()
        for recovery in list(self.recoveries):
            if count > recovery.baseline:
                self.recovered.append(now - recovery.since)
                self.recoveries.remove(recovery)
        print(f"{time.strftime('%H:%M:%S')} +{elapsed:5.1f}s {snap.line()} | {why}", file=self.log, flush=True)
        return settled, why


def anchor_clock(config: DemoConfig) -> ClockAnchor:
    # Set back by the time start-up and seeding take, so the first mails go out near a Monday morning.
    virtual_start = virtual_start_before_monday(speed=config.clock_speed, setup_real_seconds=SETUP_REAL_SECONDS)
    out = run_python_module(config, ["demo.steps", "anchor-clock", "--virtual-start", repr(virtual_start)])
    return ClockAnchor(**json.loads(out.splitlines()[-1]))


def _seed(config: DemoConfig, csv_path: Path) -> dict:
    seed = json.loads(run_python_module(config, ["demo.steps", "seed", "--csv", str(csv_path)],
                                        log_name="seed").splitlines()[-1])
    if seed["sender_status"] != "verified" or not seed["contact_campaign_ids"]:
        raise DemoError(f"seeding did not give a verified sender and enrolments: {seed}")
    return seed


def _finish(result: ScenarioResult, ctx: FaultContext, scenario: Scenario, tenant_id: int) -> None:
    report = _db_retry(lambda: invariants.check_invariants(anchor=ctx.anchor, sim_url=ctx.config.sim_url,
                                                           tenant_id=tenant_id), attempts=5)
    for check in scenario.checks:
        check(ctx, report)
    result.sections = list(report.sections)
    result.failed_sections = {name: n for name, n in report.failed_sections.items() if n}
    result.failures += report.failures
    result.mails_sent = progress.snapshot().sent
    result.events = MessageEvent.objects.count()


def run_scenario(scenario: Scenario, *, config: DemoConfig, csv_path: Path, postgres: OwnPostgres | None = None,
                 redis: OwnRedis | None = None) -> ScenarioResult:
    """Run one scenario on a fresh database and Redis (the caller prepares both, with the webhook keys)."""
    result = ScenarioResult(name=scenario.name)
    started = time.monotonic()
    config.log_dir.mkdir(parents=True, exist_ok=True)
    with (config.log_dir / "progress.log").open("a") as log, \
            ProcessGroup(log_dir=config.log_dir, env=config.env()) as group:
        supervisor = Supervisor(group)
        try:
            anchor = anchor_clock(config)
            start_system(group, config, beat=True)
            supervisor.start()
            if scenario.sim_config:
                sim_post(config.sim_url, "/_sim/config", scenario.sim_config)
            seed = _seed(config, csv_path)
            ctx = FaultContext(config=config, group=group, supervisor=supervisor, anchor=anchor, postgres=postgres,
                               redis=redis)
            driver = _Driver(scenario=scenario, ctx=ctx, result=result, log=log)
            settled, why = driver.run()
            if not settled:
                stuck = _db_retry(progress.stuck_enrolments, attempts=5)
                result.failures.append(f"did not settle within {scenario.settle_timeout:.0f} s after the last fault: "
                                       f"{why}\n{stuck}")
            _finish(result, ctx, scenario, seed["tenant_id"])
            result.recover_seconds = max(driver.recovered) if driver.recovered else None
            result.recoveries = len(driver.recovered)
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken scenario is a failed row, the others still run
            result.failures.append(f"scenario aborted: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=log)
        finally:
            supervisor.stop()
            result.restarts = supervisor.summary()
            result.failures += supervisor.failures
    result.seconds = time.monotonic() - started
    result.passed = not result.failures
    return result


# --------------------------------------------------------------------------------------------- the table

_HEADERS = ["scenario", "result", "duration s", "mails sent", "events", "invariants", "restarts", "recover s"]


def _row(result: ScenarioResult) -> list[str]:
    recover = "-" if result.recover_seconds is None else f"{result.recover_seconds:.1f} ({result.recoveries} faults)"
    return [result.name, "PASS" if result.passed else "FAIL", f"{result.seconds:.0f}", str(result.mails_sent),
            str(result.events), result.invariants_cell, result.restarts, recover]


def format_table(results: list[ScenarioResult]) -> str:
    rows = [_HEADERS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def format_failures(results: list[ScenarioResult], *, per_scenario: int = 8) -> str:
    lines = []
    for result in results:
        if result.failures:
            lines.append(f"{result.name}: {len(result.failures)} problem(s)")
            lines += [f"  - {failure}" for failure in result.failures[:per_scenario]]
    return "\n".join(lines)
