"""`make demo`: the whole system on a fast virtual clock, from an empty database to a checked result.

    python -m demo.run_demo [--keep] [--speed 7200] [--timeout 480]

Steps: check PostgreSQL and Redis, drop and recreate the demo database, flush its Redis database, create a
webhook key pair, migrate, anchor the virtual clock, start the SendGrid simulator, the web server, a Celery
worker, the dispatcher and beat (and Flower with --keep), seed a tenant, an admin, a verified sender, the
contacts of demo/contacts.csv and a campaign, enrol everyone (the offline planner writes the plans), print
progress until every enrolment is final and every webhook is in, print a summary, check the invariants.

Exit status: 0 all invariants hold, 1 an invariant failed or the run timed out, 2 something needed is
missing (PostgreSQL, Redis, a free port), 130 interrupted. Every process started is stopped on the way out.
See docs/demo.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from demo import orchestrator as orch  # noqa: E402
from demo import seeding  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"


class Interrupted(Exception):
    pass


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m demo.run_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave everything running after the summary")
    parser.add_argument("--speed", type=float, default=float(env.get("DEMO_CLOCK_SPEED", 10800)),
                        help="virtual seconds per real second (default 10800: one day in 8 s)")
    parser.add_argument("--timeout", type=float, default=float(env.get("DEMO_TIMEOUT", 480)),
                        help="real seconds the campaign may take once started (default 480)")
    parser.add_argument("--database-url", default=env.get("DEMO_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=env.get("DEMO_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--web-port", type=int, default=int(env.get("DEMO_WEB_PORT", 8000)))
    parser.add_argument("--sim-port", type=int, default=int(env.get("DEMO_SIM_PORT", 8025)))
    parser.add_argument("--flower-port", type=int, default=int(env.get("DEMO_FLOWER_PORT", 5555)))
    parser.add_argument("--flower", action=argparse.BooleanOptionalAction, default=None,
                        help="start Flower (default: only with --keep)")
    parser.add_argument("--contacts", type=Path, default=seeding.CONTACTS_CSV)
    parser.add_argument("--seed", type=int, default=int(env.get("DEMO_SIM_SEED", 7)),
                        help="the simulator's random seed (same seed, same recipients' behaviour)")
    parser.add_argument("--virtual-start", default=env.get("DEMO_VIRTUAL_START", "monday"),
                        help="'monday' (the campaign starts near a Monday 06:00 UTC, default) or an ISO date-time "
                             "at least a day ahead")
    parser.add_argument("--log-dir", type=Path, default=orch.DEFAULT_LOG_DIR)
    parser.add_argument("--web-server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--force-drop", action="store_true",
                        help="allow dropping a database whose name does not contain 'demo'")
    return parser.parse_args(argv)


# Real seconds from anchoring the clock to the end of the seeding (processes up, 200 contacts imported and
# enrolled), on this kind of machine: the virtual start is set back by as much, so mails start on a Monday.
SETUP_REAL_SECONDS = 10.0


def _virtual_start(value: str, speed: float) -> float:
    if value == "monday":
        return seeding.virtual_start_before_monday(speed=speed, setup_real_seconds=SETUP_REAL_SECONDS)
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment.timestamp() < time.time() + seeding.MIN_VIRTUAL_LEAD_SECONDS:
        raise SystemExit("--virtual-start must be at least a day in the future (the invariant checks tell "
                         "wall-clock from virtual timestamps by it)")
    return moment.timestamp()


def main(argv: list[str]) -> int:
    args = _parse(argv)
    flower = args.keep if args.flower is None else args.flower
    db_name = urlsplit(args.database_url).path.lstrip("/")
    if "demo" not in db_name and not args.force_drop:
        _say(f"refusing to drop database {db_name!r}: its name does not contain 'demo' (use --force-drop)")
        return 2

    _say("== outreach demo: preflight")
    problems = orch.preflight(database_url=args.database_url, redis_url=args.redis_url)
    ports = [("web server", args.web_port), ("SendGrid simulator", args.sim_port)]
    if flower:
        ports.append(("Flower", args.flower_port))
    for what, port in ports:
        if orch.port_in_use(port):
            problems.append(f"port {port} (for the {what}) is in use: stop what listens there, or set another "
                            f"port (DEMO_WEB_PORT / DEMO_SIM_PORT / DEMO_FLOWER_PORT)")
    if problems:
        _say("cannot run the demo:")
        for problem in problems:
            _say(f"  - {problem}")
        return 2

    virtual_start_at = _virtual_start(args.virtual_start, args.speed)
    config = orch.DemoConfig(
        database_url=args.database_url, redis_url=args.redis_url, web_port=args.web_port, sim_port=args.sim_port,
        flower_port=args.flower_port if flower else None, clock_speed=args.speed, log_dir=args.log_dir,
        sim_seed=args.seed, web_server=args.web_server,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    group: orch.ProcessGroup | None = None
    started_at = time.monotonic()
    try:
        _say(f"== fresh database {db_name} and Redis {args.redis_url}")
        orch.database_recreate(args.database_url)
        orch.redis_flush(args.redis_url)
        config.generate_webhook_keys()
        config.apply_to_current_process()
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        anchor = seeding.clock_anchor(virtual_start=virtual_start_at)
        _say(f"== virtual clock: x{args.speed:g} (one day every {86400 / args.speed:.1f} s), starting "
             f"{anchor.virtual_now():%a %Y-%m-%d %H:%M} UTC")

        _say(f"== starting processes (logs in {config.log_dir}/)")
        group = orch.ProcessGroup(log_dir=config.log_dir, env=config.env())
        orch.start_system(group, config, beat=True, flower=flower)
        for name, process in group.processes.items():
            _say(f"   {name:<10} pid {process.popen.pid:<7} {process.log_path}")

        _say("== seeding: tenant, admin, verified sender, contacts (CSV import job), campaign, enrolment")
        seed = seeding.demo_seed(csv_text=args.contacts.read_text(encoding="utf-8"))
        _say(f"   tenant {seed.tenant_slug!r}: {seed.imported_rows} contacts across {seed.leads} leads imported "
             f"({seed.error_rows} rows with errors), sender {seeding.DEMO_SENDER_EMAIL} {seed.sender_status}")
        _say(f"   {len(seed.contact_campaign_ids)} contacts enrolled in campaign {seed.campaign_id}; "
             "the offline planner writes their plans")
        _say(f"   admin:   {config.web_url}/admin/  user {seed.admin_username!r}  password {seed.admin_password!r}")
        _say(f"   API key: {seed.api_key}  (Authorization: Bearer ...; docs at {config.web_url}/api/docs/)")

        virtual_start = anchor.virtual_now()
        _say(f"== running the campaign to its end (from {virtual_start:%a %Y-%m-%d %H:%M} UTC)")
        settled, snap, why = orch.wait_until_settled(
            sim_url=config.sim_url, anchor=anchor, timeout=args.timeout, group=group,
            progress=lambda snap, why: _say("   " + snap.line(started=virtual_start)),
        )
        _say("   " + snap.line(started=virtual_start))
        failures: list[str] = []
        if not settled:
            failures.append(f"the campaign did not finish within {args.timeout:.0f} s real time: {why}")
            stuck = orch.stuck_enrolments()
            if stuck:
                _say("   enrolments still running:\n" + stuck)

        _say("\n== summary")
        _say(orch.summary_by_status())
        _say("")
        _say(orch.summary_by_node())

        _say("\n== invariants")
        report = orch.check_invariants(anchor=anchor, sim_url=config.sim_url, tenant_id=seed.tenant_id)
        for name, count in report.checked.items():
            _say(f"   checked {count:>6} {name}")
        failures += report.failures
        checks = ["no message sent twice (dedupe key; contact campaign, node and visit; simulator's mails)",
                  "nothing sent to an unsubscribed or suppressed address after its opt-out",
                  "every human reply ended its enrolment",
                  "every webhook event stored exactly once, every POST accepted and processed",
                  "every contact campaign in a final state"]
        if failures:
            _say(f"   FAILED: {len(failures)} problem(s)")
            for failure in failures[:100]:
                _say(f"   - {failure}")
        else:
            for check in checks:
                _say(f"   ok: {check}")
        pages, page_problems = orch.check_pages(web_url=config.web_url, username=seed.admin_username,
                                                password=seed.admin_password, api_key=seed.api_key,
                                                campaign_id=seed.campaign_id)
        _say(f"\n== admin and API: {len(pages)} pages answered 200")
        for problem in page_problems:
            _say(f"   WARNING: {problem} (see {config.log_dir}/web.log)")
        _say(f"\n== finished in {time.monotonic() - started_at:.0f} s real time, "
             f"{(anchor.virtual_now() - virtual_start).days} virtual days")

        if args.keep:
            _say("\n== still running (Ctrl-C stops everything):")
            _say(f"   admin           {config.web_url}/admin/  ({seed.admin_username} / {seed.admin_password})")
            _say(f"   API docs        {config.web_url}/api/docs/")
            if config.flower_url:
                _say(f"   Flower          {config.flower_url}/")
            _say(f"   simulator       {config.sim_url}/_sim/status  (mails: {config.sim_url}/_sim/messages)")
            _say(f"   logs            {config.log_dir}/")
            try:
                while True:
                    group.assert_alive()
                    time.sleep(2)
            except Interrupted:
                _say("\nstopping")
        return 1 if failures else 0
    except Interrupted as exc:
        _say(f"\ninterrupted ({exc}); stopping")
        return 130
    except orch.DemoError as exc:
        _say(f"\ndemo failed: {exc}")
        return 1
    except Exception:  # noqa: BLE001 - say what broke, then still stop every process (finally)
        import traceback

        _say("\ndemo failed with an unexpected error:")
        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if group is not None:
            group.stop()
            _say(f"stopped {len(group.processes)} processes")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
