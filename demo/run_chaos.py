"""`make chaos`: every chaos scenario on the real processes, each from a fresh database, then one table.

    python -m demo.run_chaos [--only NAME ...] [--short] [--contacts 20] [--log-dir var/chaos]

The run uses a PostgreSQL cluster and a redis-server of its own (made and started here: pg_createcluster on
port 5445, redis-server on 6450), never the shared ones, because two scenarios crash them. Each scenario:
a fresh database (from a migrated template), Redis flushed, new webhook keys, the demo's processes under a
supervisor, a 20-contact campaign on a 50,000x clock, the scenario's faults, the invariants. See
docs/chaos.md.

Exit status: 0 every scenario passed, 1 one failed, 2 something needed is missing, 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from demo import processes  # noqa: E402
from demo.chaos_services import OwnPostgres, OwnRedis  # noqa: E402
from demo.scenario import SHORT_RUN_CLOCK_SPEED, SHORT_RUN_SIMULATOR_SEED, write_sample_contacts  # noqa: E402

DATABASE = "outreach_chaos"
TEMPLATE = "outreach_chaos_template"
DEFAULT_LOG_DIR = BASE_DIR / "var" / "chaos"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m demo.run_chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run the scenarios whose name contains TEXT (repeatable)")
    parser.add_argument("--short", action="store_true", help="only the short variant `make test` runs")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--contacts", type=int, default=20, help="contacts per scenario (at least 7)")
    parser.add_argument("--postgres-port", type=int, default=int(env.get("CHAOS_POSTGRES_PORT", 5445)))
    parser.add_argument("--redis-port", type=int, default=int(env.get("CHAOS_REDIS_PORT", 6450)))
    parser.add_argument("--web-port", type=int, default=int(env.get("CHAOS_WEB_PORT", 0)), help="0: any free port")
    parser.add_argument("--sim-port", type=int, default=int(env.get("CHAOS_SIM_PORT", 0)), help="0: any free port")
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR)
    return parser.parse_args(argv)


def _admin(postgres: OwnPostgres):
    return psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres", autocommit=True)


def _fresh_database(postgres: OwnPostgres, *, first: bool) -> None:
    """The scenario's database: migrated once, then copied from the template (seconds instead of a migrate)."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    if first:
        processes.database_recreate(postgres.url(DATABASE))
        call_command("migrate", interactive=False, verbosity=0)
        connections.close_all()
        with _admin(postgres) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(TEMPLATE),
                                                                         sql.Identifier(DATABASE)))
        return
    with _admin(postgres) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", [DATABASE])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(DATABASE),
                                                                     sql.Identifier(TEMPLATE)))


def _config(args: argparse.Namespace, postgres: OwnPostgres, redis: OwnRedis, log_dir: Path, *,
            clock_speed: float = SHORT_RUN_CLOCK_SPEED):
    config = processes.DemoConfig(
        database_url=postgres.url(DATABASE), redis_url=redis.url, web_port=args.web_port or processes.free_port(),
        sim_port=args.sim_port or processes.free_port(), clock_speed=clock_speed, log_dir=log_dir,
        worker_concurrency=4, dispatcher_interval=0.1, sim_seed=SHORT_RUN_SIMULATOR_SEED,
        sim_args=["--flush-interval", "0.3"],
    )
    config.generate_webhook_keys()
    return config


def _on_signal(signum: int, frame: object) -> None:
    raise processes.Interrupted(signal.Signals(signum).name)


def _chosen(args: argparse.Namespace):
    from demo.chaos_scenarios import SCENARIOS

    chosen = [s for s in SCENARIOS if not args.short or s.in_short_run]
    if args.only:
        chosen = [s for s in chosen if any(text.lower() in s.name.lower() for text in args.only)]
    return chosen


def _run_all(args: argparse.Namespace, postgres: OwnPostgres, redis: OwnRedis) -> int:
    config = _config(args, postgres, redis, args.log_dir / "setup")
    config.apply_to_current_process()
    django.setup()
    # demo.chaos imports the apps' models: only after django.setup().
    from demo.chaos import format_failures, format_table, run_scenario

    scenarios = _chosen(args)
    if args.list or not scenarios:
        for scenario in _chosen(argparse.Namespace(short=False, only=[])):
            _say(f"  {scenario.name:<42} {scenario.what}")
        return 0 if args.list else 2
    csv_path = args.log_dir / "contacts.csv"
    write_sample_contacts(csv_path, count=args.contacts)
    results = []
    for index, scenario in enumerate(scenarios):
        slug = "".join(c if c.isalnum() else "-" for c in scenario.name.lower()).strip("-")
        config = _config(args, postgres, redis, args.log_dir / f"{index + 1:02d}-{slug}",
                         clock_speed=scenario.clock_speed)
        _say(f"== {index + 1}/{len(scenarios)} {scenario.name}: {scenario.what}  (logs in {config.log_dir}/)")
        _fresh_database(postgres, first=index == 0)
        processes.redis_flush(redis.url)
        result = run_scenario(scenario, config=config, csv_path=csv_path, postgres=postgres, redis=redis)
        _say(f"   {'PASS' if result.passed else 'FAIL'} in {result.seconds:.0f} s: {result.mails_sent} mails, "
             f"{result.events} events, invariants {result.invariants_cell}, restarts {result.restarts}")
        for failure in result.failures[:5]:
            _say(f"   - {failure}")
        results.append(result)
    _say("\n== chaos: every scenario\n")
    _say(format_table(results))
    failures = format_failures(results)
    if failures:
        _say("\n" + failures)
    return 0 if all(r.passed for r in results) else 1


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.contacts < 7:
        _say("--contacts: at least 7 (one of each scripted recipient)")
        return 2
    args.log_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started = time.monotonic()
    redis = OwnRedis(port=args.redis_port, log_path=args.log_dir / "redis-server.log")
    try:
        postgres = OwnPostgres(port=args.postgres_port)
        _say(f"== own PostgreSQL cluster {postgres.version}/{postgres.name} on port {postgres.port}, "
             f"own redis-server on port {redis.port}")
        postgres.ensure_running()
        if processes.port_in_use(redis.port):
            _say(f"port {redis.port} (the chaos run's own redis-server) is in use: stop it or set --redis-port")
            return 2
        redis.start()
        return _run_all(args, postgres, redis)
    except processes.Interrupted as exc:
        _say(f"\ninterrupted ({exc}); stopping")
        return 130
    except processes.DemoError as exc:
        _say(f"cannot run the chaos scenarios: {exc}")
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        redis.stop()
        _say(f"\n== chaos run over in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
