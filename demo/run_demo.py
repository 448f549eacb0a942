"""`make demo`: the whole system on a fast virtual clock, from an empty database to a checked result.

    python -m demo.run_demo [--keep] [--speed N] [--timeout 480]

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
import traceback
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402

from demo import processes  # noqa: E402
from demo.scenario import (  # noqa: E402
    CONTACTS_CSV,
    DEMO_CLOCK_SPEED,
    MIN_VIRTUAL_LEAD_SECONDS,
    virtual_start_before_monday,
)

FALLBACK_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_demo"
DEMO_REDIS_DB = 10


def default_database_url(env: dict[str, str]) -> str:
    """DEMO_DATABASE_URL; else the DATABASE_URL server with `_demo` added to its database name (so a checkout
    set up for outreach_x runs its demo in outreach_x_demo); else outreach_demo on the local server."""
    if env.get("DEMO_DATABASE_URL"):
        return env["DEMO_DATABASE_URL"]
    if env.get("DATABASE_URL"):
        parts = urlsplit(env["DATABASE_URL"])
        name = parts.path.lstrip("/")
        if name and "demo" not in name:
            return urlunsplit(parts._replace(path=f"/{name}_demo"))
        if name:
            return env["DATABASE_URL"]
    return FALLBACK_DATABASE_URL


def default_redis_url(env: dict[str, str]) -> str:
    """DEMO_REDIS_URL; else database 10 of the REDIS_URL server; else database 10 of the local Redis."""
    if env.get("DEMO_REDIS_URL"):
        return env["DEMO_REDIS_URL"]
    base = urlsplit(env.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(base._replace(path=f"/{DEMO_REDIS_DB}"))


def _on_signal(signum: int, frame: object) -> None:
    raise processes.Interrupted(signal.Signals(signum).name)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m demo.run_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave everything running after the summary")
    parser.add_argument("--speed", type=float, default=float(env.get("DEMO_CLOCK_SPEED", DEMO_CLOCK_SPEED)),
                        help=f"virtual seconds per real second (default {DEMO_CLOCK_SPEED:g}: one day in "
                             f"{86400 / DEMO_CLOCK_SPEED:g} s; env DEMO_CLOCK_SPEED)")
    parser.add_argument("--timeout", type=float, default=float(env.get("DEMO_TIMEOUT", 480)),
                        help="real seconds the campaign may take once started (default 480)")
    parser.add_argument("--database-url", default=default_database_url(env))
    parser.add_argument("--redis-url", default=default_redis_url(env))
    parser.add_argument("--web-port", type=int, default=int(env.get("DEMO_WEB_PORT", 8000)))
    parser.add_argument("--sim-port", type=int, default=int(env.get("DEMO_SIM_PORT", 8025)))
    parser.add_argument("--flower-port", type=int, default=int(env.get("DEMO_FLOWER_PORT", 5555)))
    parser.add_argument("--flower", action=argparse.BooleanOptionalAction, default=None,
                        help="start Flower (default: only with --keep)")
    parser.add_argument("--contacts", type=Path, default=CONTACTS_CSV)
    parser.add_argument("--seed", type=int, default=int(env.get("DEMO_SIM_SEED", 7)),
                        help="the simulator's random seed (same seed, same recipients' behaviour)")
    parser.add_argument("--virtual-start", default=env.get("DEMO_VIRTUAL_START", "monday"),
                        help="'monday' (the campaign starts near a Monday 06:00 UTC, default) or an ISO date-time "
                             "at least a day ahead")
    parser.add_argument("--log-dir", type=Path, default=processes.DEFAULT_LOG_DIR)
    parser.add_argument("--web-server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--force-drop", action="store_true",
                        help="allow dropping a database whose name does not contain 'demo'")
    return parser.parse_args(argv)


# Real seconds from anchoring the clock to the end of the seeding (processes up, 200 contacts imported and
# enrolled), on this kind of machine: the virtual start is set back by as much, so mails start on a Monday.
SETUP_REAL_SECONDS = 10.0


def _virtual_start(value: str, speed: float) -> float:
    if value == "monday":
        return virtual_start_before_monday(speed=speed, setup_real_seconds=SETUP_REAL_SECONDS)
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment.timestamp() < time.time() + MIN_VIRTUAL_LEAD_SECONDS:
        raise SystemExit("--virtual-start must be at least a day in the future (the invariant checks tell "
                         "wall-clock from virtual timestamps by it)")
    return moment.timestamp()


def _refusal(args: argparse.Namespace) -> str | None:
    db_name = urlsplit(args.database_url).path.lstrip("/")
    if "demo" not in db_name and not args.force_drop:
        return f"refusing to drop database {db_name!r}: its name does not contain 'demo' (use --force-drop)"
    return None


def _preflight(args: argparse.Namespace, *, flower: bool) -> list[str]:
    """What is missing (services, free ports), in words a newcomer can act on."""
    problems = processes.preflight(database_url=args.database_url, redis_url=args.redis_url)
    ports = [("web server", args.web_port), ("SendGrid simulator", args.sim_port)]
    if flower:
        ports.append(("Flower", args.flower_port))
    for what, port in ports:
        if processes.port_in_use(port):
            problems.append(f"port {port} (for the {what}) is in use: stop what listens there, or set another "
                            f"port (DEMO_WEB_PORT / DEMO_SIM_PORT / DEMO_FLOWER_PORT)")
    return problems


def _prepare(args: argparse.Namespace, config: processes.DemoConfig, *, virtual_start_at: float):
    """A fresh database and Redis, the webhook keys, Django set up and migrated, the virtual clock anchored."""
    db_name = urlsplit(args.database_url).path.lstrip("/")
    _say(f"== fresh database {db_name} and Redis {args.redis_url}")
    processes.database_recreate(args.database_url)
    processes.redis_flush(args.redis_url)
    config.generate_webhook_keys()
    config.apply_to_current_process()
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    # demo.seeding imports the apps' models and services: only after django.setup().
    from demo.seeding import clock_anchor

    anchor = clock_anchor(virtual_start=virtual_start_at)
    _say(f"== virtual clock: x{args.speed:g} (one day every {86400 / args.speed:.1f} s), starting "
         f"{anchor.virtual_now():%a %Y-%m-%d %H:%M} UTC")
    return anchor


def main(argv: list[str]) -> int:
    args = _parse(argv)
    flower = args.keep if args.flower is None else args.flower
    refusal = _refusal(args)
    if refusal:
        _say(refusal)
        return 2
    _say("== outreach demo: preflight")
    problems = _preflight(args, flower=flower)
    if problems:
        _say("cannot run the demo:")
        for problem in problems:
            _say(f"  - {problem}")
        return 2

    virtual_start_at = _virtual_start(args.virtual_start, args.speed)
    config = processes.DemoConfig(
        database_url=args.database_url, redis_url=args.redis_url, web_port=args.web_port, sim_port=args.sim_port,
        flower_port=args.flower_port if flower else None, clock_speed=args.speed, log_dir=args.log_dir,
        sim_seed=args.seed, web_server=args.web_server,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return _run(args, config, flower=flower, virtual_start_at=virtual_start_at)


def _run(args: argparse.Namespace, config: processes.DemoConfig, *, flower: bool, virtual_start_at: float) -> int:
    """Prepare and run the demo; every process started is stopped on the way out, whatever happens."""
    session = None
    started_at = time.monotonic()
    try:
        anchor = _prepare(args, config, virtual_start_at=virtual_start_at)
        # demo.session imports the apps' models (progress, invariants, pages): only after django.setup().
        from demo.session import DemoSession

        session = DemoSession(args=args, config=config, flower=flower, anchor=anchor, started_at=started_at)
        return session.run()
    except processes.Interrupted as exc:
        _say(f"\ninterrupted ({exc}); stopping")
        return 130
    except processes.DemoError as exc:
        _say(f"\ndemo failed: {exc}")
        return 1
    except Exception:  # noqa: BLE001 - say what broke, then still stop every process (finally)
        _say("\ndemo failed with an unexpected error:")
        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if session is not None:
            session.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
