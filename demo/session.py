"""One `make demo` run once Django is set up: start the processes, seed, run the campaign to its end,
print the summary and the invariants, check the pages (and with --keep, leave everything running).

demo/run_demo.py parses the arguments, checks the services and prepares the database before it imports
this module: it imports the apps' models (through demo.progress, demo.invariants, demo.pages, demo.seeding).
"""
from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass, field

from demo import invariants, metrics_check, pages, progress, seeding
from demo.processes import DemoConfig, Interrupted, ProcessGroup, start_system
from demo.scenario import DEMO_SENDER_EMAIL, ClockAnchor, SeedResult

# What the invariants stand for, printed when they all hold.
CHECKS = ("no message sent twice (dedupe key; contact campaign, node and visit; simulator's mails)",
          "nothing sent to an unsubscribed or suppressed address after its opt-out",
          "every human reply ended its enrolment",
          "every webhook event stored exactly once, every POST accepted and processed",
          "every contact campaign in a final state",
          "no message left unknown once provider events for it are stored",
          "no mail sent inside its contact's quiet hours or off the plan's send days",
          "the rollups agree with the raw events (analytics_verify) and with the simulator's own counts")


def _say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class DemoSession:
    args: argparse.Namespace
    config: DemoConfig
    flower: bool
    anchor: ClockAnchor
    started_at: float
    group: ProcessGroup | None = None
    failures: list[str] = field(default_factory=list)

    def run(self) -> int:
        """The whole run; 0 when every invariant holds, 1 otherwise. Call stop() afterwards, whatever happens."""
        self._start_processes()
        seed = self._seed()
        virtual_start = self.anchor.virtual_now()
        self._run_campaign(virtual_start)
        self._summary()
        self._invariants(seed)
        self._pages(seed)
        _say(f"\n== finished in {time.monotonic() - self.started_at:.0f} s real time, "
             f"{(self.anchor.virtual_now() - virtual_start).days} virtual days")
        if self.args.keep:
            self._keep_running(seed)
        return 1 if self.failures else 0

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            _say(f"stopped {len(self.group.processes)} processes")

    def _start_processes(self) -> None:
        _say(f"== starting processes (logs in {self.config.log_dir}/)")
        self.group = ProcessGroup(log_dir=self.config.log_dir, env=self.config.env())
        start_system(self.group, self.config, beat=True, flower=self.flower)
        for name, process in self.group.processes.items():
            _say(f"   {name:<10} pid {process.popen.pid:<7} {process.log_path}")

    def _seed(self) -> SeedResult:
        web_url = self.config.web_url
        _say("== seeding: tenant, admin, verified sender, contacts (CSV import job), campaign, enrolment")
        seed = seeding.demo_seed(csv_text=self.args.contacts.read_text(encoding="utf-8"))
        _say(f"   tenant {seed.tenant_slug!r}: {seed.imported_rows} contacts across {seed.leads} leads imported "
             f"({seed.error_rows} rows with errors), sender {DEMO_SENDER_EMAIL} {seed.sender_status}")
        _say(f"   {len(seed.contact_campaign_ids)} contacts enrolled in campaign {seed.campaign_id}; "
             "the offline planner writes their plans")
        _say(f"   admin:   {web_url}/admin/  user {seed.admin_username!r}  password {seed.admin_password!r}")
        _say(f"   API key: {seed.api_key}  (Authorization: Bearer ...; docs at {web_url}/api/docs/)")
        return seed

    def _run_campaign(self, virtual_start: dt.datetime) -> None:
        _say(f"== running the campaign to its end (from {virtual_start:%a %Y-%m-%d %H:%M} UTC)")
        settled, snap, why = progress.wait_until_settled(
            sim_url=self.config.sim_url, anchor=self.anchor, timeout=self.args.timeout, group=self.group,
            progress=lambda snap, why: _say("   " + snap.line(started=virtual_start)),
        )
        _say("   " + snap.line(started=virtual_start))
        if not settled:
            self.failures.append(f"the campaign did not finish within {self.args.timeout:.0f} s real time: {why}")
            stuck = progress.stuck_enrolments()
            if stuck:
                _say("   enrolments still running:\n" + stuck)

    def _summary(self) -> None:
        _say("\n== summary")
        _say(progress.summary_by_status())
        _say("")
        _say(progress.summary_by_node())

    def _invariants(self, seed: SeedResult) -> None:
        _say("\n== invariants")
        report = invariants.check_invariants(anchor=self.anchor, sim_url=self.config.sim_url,
                                             tenant_id=seed.tenant_id)
        rollup_failures, rollup_checked = metrics_check.rollup_failures(sim_url=self.config.sim_url)
        report.failures += rollup_failures
        report.checked.update(rollup_checked)
        for name, count in report.checked.items():
            _say(f"   checked {count:>6} {name}")
        self.failures += report.failures
        if self.failures:
            _say(f"   FAILED: {len(self.failures)} problem(s)")
            for failure in self.failures[:100]:
                _say(f"   - {failure}")
        else:
            for check in CHECKS:
                _say(f"   ok: {check}")

    def _pages(self, seed: SeedResult) -> None:
        opened, problems = pages.check_pages(web_url=self.config.web_url, username=seed.admin_username,
                                             password=seed.admin_password, api_key=seed.api_key,
                                             campaign_id=seed.campaign_id)
        _say(f"\n== admin and API: {len(opened)} pages answered 200")
        _say(f"\n== campaign metrics (GET /api/v1/metrics/campaigns/{seed.campaign_id})")
        for line in metrics_check.campaign_metrics_lines(web_url=self.config.web_url, api_key=seed.api_key,
                                                         campaign_id=seed.campaign_id):
            _say(f"   {line}")
        for problem in problems:
            _say(f"   WARNING: {problem} (see {self.config.log_dir}/web.log)")

    def _keep_running(self, seed: SeedResult) -> None:
        config = self.config
        _say("\n== still running (Ctrl-C stops everything):")
        _say(f"   admin           {config.web_url}/admin/  ({seed.admin_username} / {seed.admin_password})")
        _say(f"   API docs        {config.web_url}/api/docs/")
        if config.flower_url:
            _say(f"   Flower          {config.flower_url}/")
        _say(f"   simulator       {config.sim_url}/_sim/status  (mails: {config.sim_url}/_sim/messages)")
        _say(f"   logs            {config.log_dir}/")
        try:
            while True:
                assert self.group is not None
                self.group.assert_alive()
                time.sleep(2)
        except Interrupted:
            _say("\nstopping")
