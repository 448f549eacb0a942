"""Run the whole system as real processes, watch it, and check what must always hold.

Shared by `make demo` (demo/run_demo.py) and the end-to-end test (tests/test_end_to_end.py):

- `DemoConfig`: ports, URLs, the clock speed and the environment every process gets;
- `ProcessGroup`: starts processes in their own process groups with logs in var/demo/*.log, waits until
  each is ready, and stops every one it started (also on Ctrl-C, errors, or when this process dies);
- `snapshot()`: one query's worth of progress counters; `is_settled()`: nothing left to happen;
- `check_invariants()`: the properties that must hold after a run, returned as a list of failures.

The functions that read the database need Django set up (the caller's settings may differ from the
processes' as long as both point at the same database).
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_LOG_DIR = BASE_DIR / "var" / "demo"
PYTHON = sys.executable
QUEUES = ("lead_analysis", "campaign_creation", "campaign_execution", "webhooks", "analytics")
# Local stand-ins only: never send these requests through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DemoError(RuntimeError):
    """Something the demo cannot go on without (a service missing, a process that died)."""


# --------------------------------------------------------------------------------------------- configuration


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just handed out (bind to port 0); free unless someone grabs it in between."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class DemoConfig:
    database_url: str
    redis_url: str
    web_port: int = 8000
    sim_port: int = 8025
    flower_port: int | None = None
    clock_speed: float = 7200.0
    log_dir: Path = DEFAULT_LOG_DIR
    settings_module: str = "demo.settings"
    inbound_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    sendgrid_api_key: str = "SG.local-simulator-key"
    sim_seed: int = 7
    sim_args: list[str] = field(default_factory=list)
    worker_concurrency: int = 4
    dispatcher_interval: float = 0.25
    web_server: str = "gunicorn"  # or "runserver"
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)
    webhook_public_key: str = ""
    webhook_private_key_file: Path | None = None
    worker_name: str = field(default_factory=lambda: f"demo-{secrets.token_hex(3)}")

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def flower_url(self) -> str | None:
        return f"http://127.0.0.1:{self.flower_port}" if self.flower_port else None

    def generate_webhook_keys(self) -> None:
        """A fresh P-256 key pair: the simulator signs with the private half (a file only it reads), every
        other process verifies with the public half (SENDGRID_WEBHOOK_PUBLIC_KEY in its environment)."""
        from simulators.sendgrid.signing import generate_key_pair, private_key_pem

        self.log_dir.mkdir(parents=True, exist_ok=True)
        key, public_b64 = generate_key_pair()
        path = self.log_dir / "sim_webhook_key.pem"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_pem(key))
        self.webhook_private_key_file = path
        self.webhook_public_key = public_b64

    def env(self) -> dict[str, str]:
        """The environment of every process (and of the orchestrator itself before it sets Django up)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "PYTEST_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CLOCK_SPEED": repr(float(self.clock_speed)),
            "SENDGRID_API_HOST": self.sim_url,
            "SENDGRID_API_KEY": self.sendgrid_api_key,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": self.webhook_public_key,
            "SENDGRID_INBOUND_SECRET": self.inbound_secret,
            "PUBLIC_BASE_URL": self.web_url,
            "FLOWER_URL": self.flower_url or "http://127.0.0.1:5555",
            # Empty on purpose: the offline planner and classifier, never a paid API, in the demo and tests.
            "OPENAI_API_KEY": "",
            "OUTREACH_SENDING_STOPPED": "false",
            "LOG_LEVEL": self.log_level,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(BASE_DIR),
        })
        env.update(self.extra_env)
        return env

    def apply_to_current_process(self) -> None:
        """Make this process read the same settings as the ones it starts (call before django.setup())."""
        os.environ.update(self.env())


def database_url_from_settings(db: dict[str, Any]) -> str:
    """postgres://user:password@host:port/name from a Django DATABASES entry."""
    from outreach.settings.env import database_url

    return database_url(db)


# --------------------------------------------------------------------------------------------- preflight


def preflight(*, database_url: str, redis_url: str) -> list[str]:
    """What is missing to run the demo, in words a newcomer can act on ([] = all there)."""
    problems = []
    parts = urlsplit(database_url)
    try:
        import psycopg

        with psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                             user=parts.username or None, password=parts.password or None, dbname="postgres",
                             connect_timeout=5):
            pass
    except ImportError:
        problems.append("psycopg is not installed: run `make install`")
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        problems.append(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432} as user "
                        f"{parts.username or '(default)'}: {str(exc).strip().splitlines()[0]}\n"
                        "    start it (e.g. `sudo service postgresql start`) or set DEMO_DATABASE_URL")
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except ImportError:
        problems.append("redis (the Python client) is not installed: run `make install`")
    except Exception as exc:  # noqa: BLE001
        redis_parts = urlsplit(redis_url)
        problems.append(f"Redis is not reachable at {redis_parts.hostname}:{redis_parts.port or 6379}: {exc}\n"
                        "    start it (e.g. `redis-server --daemonize yes`) or set DEMO_REDIS_URL")
    return problems


def database_recreate(database_url: str) -> None:
    """Drop (closing its connections) and create the database named by the URL."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432, user=parts.username or None,
                         password=parts.password or None, dbname="postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", [name])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def redis_flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


# --------------------------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGTERM when the orchestrator dies (Linux),
    so even a SIGKILLed orchestrator leaves no orphans."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessGroup:
    """Processes started for one run; `stop()` (or leaving the `with` block) ends every one of them."""

    def __init__(self, *, log_dir: Path, env: dict[str, str], cwd: Path = BASE_DIR) -> None:
        self.log_dir = log_dir
        self.env = env
        self.cwd = cwd
        self.processes: dict[str, ManagedProcess] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> ManagedProcess:
        if name in self.processes and self.processes[name].alive:
            raise DemoError(f"{name} is already running")
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the child keeps the descriptor; we close ours below
        try:
            popen = subprocess.Popen(argv, cwd=self.cwd, env=env or self.env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
        finally:
            log.close()
        process = ManagedProcess(name=name, argv=argv, popen=popen, log_path=log_path)
        self.processes[name] = process
        return process

    def dead(self) -> list[ManagedProcess]:
        return [p for p in self.processes.values() if not p.alive]

    def assert_alive(self) -> None:
        dead = self.dead()
        if dead:
            details = "\n".join(f"--- {p.name} exited with {p.popen.returncode}; last lines of {p.log_path}:\n"
                                f"{p.log_tail()}" for p in dead)
            raise DemoError(f"process(es) died: {', '.join(p.name for p in dead)}\n{details}")

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM every process group (in reverse start order), then SIGKILL what is left."""
        running = [p for p in reversed(list(self.processes.values())) if p.alive]
        for process in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.popen.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            # The group may hold children (gunicorn workers, pool threads' helpers) even after the leader exited.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            if process.popen.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)

    # --- readiness -----------------------------------------------------------------------------------------

    def wait_http(self, name: str, url: str, *, timeout: float = 60.0, ok: Iterable[int] = (200,)) -> None:
        wanted = set(ok)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_one(name)
            try:
                with _OPENER.open(url, timeout=3) as response:
                    if response.status in wanted:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                if exc.code in wanted:
                    return
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise DemoError(f"{name} did not answer {url} within {timeout:.0f}s ({last}); "
                        f"see {self.processes[name].log_path}")

    def wait_log(self, name: str, pattern: str, *, timeout: float = 60.0) -> None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            self._check_one(name)
            try:
                if regex.search(process.log_path.read_text(errors="replace")):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise DemoError(f"{name} was not ready within {timeout:.0f}s (no /{pattern}/ in {process.log_path}):\n"
                        f"{process.log_tail()}")

    def wait_alive(self, name: str, seconds: float = 1.0) -> None:
        time.sleep(seconds)
        self._check_one(name)

    def _check_one(self, name: str) -> None:
        process = self.processes[name]
        if not process.alive:
            raise DemoError(f"{name} exited with {process.popen.returncode} while starting; last lines of "
                            f"{process.log_path}:\n{process.log_tail()}")


def start_system(group: ProcessGroup, config: DemoConfig, *, beat: bool = True, flower: bool = False,
                 timeout: float = 90.0) -> None:
    """Start the simulator, web server, worker, dispatcher (and beat, Flower) and wait until each is ready."""
    manage = [PYTHON, str(BASE_DIR / "manage.py")]
    sim_argv = [*manage, "sendgrid_simulator", "--host", "127.0.0.1", "--port", str(config.sim_port),
                "--seed", str(config.sim_seed), "--api-key", config.sendgrid_api_key]
    if config.webhook_private_key_file:
        sim_argv += ["--private-key-file", str(config.webhook_private_key_file)]
    group.start("simulator", sim_argv + list(config.sim_args))

    if config.web_server == "gunicorn":
        web_argv = [PYTHON, "-m", "gunicorn", "outreach.wsgi:application", "--bind", f"127.0.0.1:{config.web_port}",
                    "--workers", "2", "--threads", "4", "--timeout", "60", "--graceful-timeout", "5",
                    "--access-logfile", str(config.log_dir / "web-access.log"), "--error-logfile", "-"]
    else:
        web_argv = [*manage, "runserver", f"127.0.0.1:{config.web_port}", "--noreload"]
    group.start("web", web_argv)

    worker_argv = [PYTHON, "-m", "celery", "-A", "outreach", "worker", "-Q", ",".join(QUEUES), "-P", "threads",
                   "-c", str(config.worker_concurrency), "-n", f"{config.worker_name}@%h", "--without-gossip",
                   "--without-mingle", "-l", "INFO"]
    if flower:
        worker_argv.append("-E")  # task events, so Flower shows tasks
    group.start("worker", worker_argv)
    group.start("dispatcher", [*manage, "run_dispatcher", "--interval", str(config.dispatcher_interval)])
    if beat:
        pidfile = config.log_dir / "beat.pid"
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        group.start("beat", [PYTHON, "-m", "celery", "-A", "outreach", "beat", "-l", "INFO",
                             "--pidfile", str(pidfile)])
    if flower and config.flower_port:
        group.start("flower", [PYTHON, "-m", "celery", "-A", "outreach", "flower", f"--port={config.flower_port}",
                               "--address=127.0.0.1"])

    group.wait_http("simulator", f"{config.sim_url}/_sim/status", timeout=timeout)
    group.wait_http("web", f"{config.web_url}/admin/login/", timeout=timeout)
    group.wait_log("worker", r"\bready\.", timeout=timeout)
    group.wait_alive("dispatcher")
    if beat:
        group.wait_log("beat", r"beat: Starting", timeout=timeout)
    if flower and config.flower_port:
        group.wait_http("flower", f"{config.flower_url}/healthcheck", timeout=timeout)


def run_python_module(config: DemoConfig, args: list[str], *, timeout: float = 300.0,
                      log_name: str | None = None) -> str:
    """Run `python -m ...` with the processes' environment; returns stdout, raises with the output on failure."""
    result = subprocess.run([PYTHON, "-m", *args], cwd=BASE_DIR, env=config.env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    if log_name:
        (config.log_dir / f"{log_name}.log").write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    if result.returncode != 0:
        raise DemoError(f"`python -m {' '.join(args)}` failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


# --------------------------------------------------------------------------------------------- the simulator


def sim_get(sim_url: str, path: str, *, timeout: float = 30.0) -> Any:
    with _OPENER.open(f"{sim_url}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def sim_post(sim_url: str, path: str, data: dict | None = None, *, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(f"{sim_url}{path}", data=json.dumps(data or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())


# --------------------------------------------------------------------------------------------- progress


@dataclass
class Snapshot:
    virtual_now: dt.datetime | None
    messages: dict[str, int]  # outbound status -> count
    sent: int
    delivered: int
    human_opens: int
    machine_opens: int
    human_clicks: int
    scanner_clicks: int
    replies: int
    auto_replies: int
    bounces: int
    spam_reports: int
    unsubscribes: int
    suppressions: int
    enrolments: dict[str, int]  # contact campaign status -> count
    pending_actions: int
    webhook_pending: int
    webhook_failed: int

    @property
    def total_enrolments(self) -> int:
        return sum(self.enrolments.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.enrolments.items() if status in FINAL_STATUSES)

    @property
    def running(self) -> int:
        return self.total_enrolments - self.finished

    def line(self, *, started: dt.datetime | None = None) -> str:
        clock = self.virtual_now.strftime("%a %Y-%m-%d %H:%M") if self.virtual_now else "?"
        elapsed = ""
        if started and self.virtual_now:
            delta = self.virtual_now - started
            elapsed = f" (+{delta.days}d{delta.seconds // 3600:02d}h)"
        return (f"[{clock}{elapsed}] sent {self.sent}  delivered {self.delivered}  opens {self.human_opens}"
                f" (+{self.machine_opens} machine)  clicks {self.human_clicks}  replies {self.replies}"
                f" (+{self.auto_replies} auto)  bounces {self.bounces}  unsubscribes {self.unsubscribes}"
                f"  spam {self.spam_reports} | enrolments: {self.running} running, {self.finished} finished"
                f" of {self.total_enrolments}")


FINAL_STATUSES = ("completed", "stopped", "canceled", "failed")
UNSUBSCRIBE_EVENTS = ("unsubscribe", "group_unsubscribe")

_SNAPSHOT_SQL = """
SELECT
  (SELECT coalesce(json_object_agg(status, n), '{}') FROM
     (SELECT status, count(*) AS n FROM outbound_messages GROUP BY status) s),
  (SELECT count(*) FROM outbound_messages WHERE sent_at IS NOT NULL),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'delivered'),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'open' AND NOT is_machine),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'open' AND is_machine),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'click' AND NOT is_machine),
  (SELECT count(*) FROM message_events WHERE event_type = 'click' AND is_machine),
  (SELECT count(*) FROM inbound_messages WHERE NOT is_auto_reply),
  (SELECT count(*) FROM inbound_messages WHERE is_auto_reply),
  (SELECT count(DISTINCT lower(email)) FROM message_events WHERE event_type = 'bounce'),
  (SELECT count(DISTINCT lower(email)) FROM message_events WHERE event_type = 'spamreport'),
  (SELECT count(*) FROM contact_unsubscribes),
  (SELECT count(*) FROM communication_suppressions),
  (SELECT coalesce(json_object_agg(status, n), '{}') FROM
     (SELECT status, count(*) AS n FROM contact_campaigns GROUP BY status) c),
  (SELECT count(*) FROM scheduled_actions WHERE status IN ('pending', 'claimed')),
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')
"""


def _json(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def snapshot(*, anchor: Any = None) -> Snapshot:
    """Progress counters in one statement (the demo database holds one tenant; tests use their own DB)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT_SQL)
        row = cursor.fetchone()
    return Snapshot(
        virtual_now=anchor.virtual_now() if anchor is not None else None,
        messages=_json(row[0]), sent=row[1], delivered=row[2], human_opens=row[3], machine_opens=row[4],
        human_clicks=row[5], scanner_clicks=row[6], replies=row[7], auto_replies=row[8], bounces=row[9],
        spam_reports=row[10], unsubscribes=row[11], suppressions=row[12], enrolments=_json(row[13]),
        pending_actions=row[14], webhook_pending=row[15], webhook_failed=row[16],
    )


def sim_settled(sim_url: str) -> tuple[bool, str]:
    """True when the simulator has nothing left to emit or post."""
    status = sim_get(sim_url, "/_sim/status")
    posts = status.get("posts") or {}
    busy = {k: v for k, v in posts.items() if k in ("pending", "sending", "retrying") and v}
    if status.get("pending") or busy:
        return False, f"simulator: {status.get('pending', 0)} scheduled, posts {busy}"
    events = sim_get(sim_url, "/_sim/events?event=__none__")
    if events.get("ready"):
        return False, f"simulator: {events['ready']} events not batched yet"
    return True, ""


def is_settled(snap: Snapshot, *, sim_url: str | None) -> tuple[bool, str]:
    """Every enrolment final, no timer or message in flight, every webhook stored and processed."""
    if snap.total_enrolments == 0:
        return False, "no enrolments yet"
    if snap.running:
        return False, f"{snap.running} enrolments still running"
    in_flight = {k: v for k, v in snap.messages.items() if k in ("queued", "sending") and v}
    if in_flight:
        return False, f"messages in flight: {in_flight}"
    if snap.pending_actions:
        return False, f"{snap.pending_actions} scheduled actions pending"
    if snap.webhook_pending:
        return False, f"{snap.webhook_pending} webhook deliveries not processed"
    if sim_url:
        settled, why = sim_settled(sim_url)
        if not settled:
            return False, why
    return True, ""


def wait_until_settled(*, sim_url: str | None, anchor: Any, timeout: float, group: ProcessGroup | None = None,
                       progress: Callable[[Snapshot, str], None] | None = None, progress_every: float = 5.0,
                       settle_confirmations: int = 2) -> tuple[bool, Snapshot, str]:
    """Poll until `is_settled` holds on consecutive polls (or timeout); returns (settled, last snapshot, why not)."""
    deadline = time.monotonic() + timeout
    next_progress = 0.0
    confirmations = 0
    snap = snapshot(anchor=anchor)
    why = ""
    while True:
        if group is not None:
            group.assert_alive()
        snap = snapshot(anchor=anchor)
        now = time.monotonic()
        settled, why = is_settled(snap, sim_url=sim_url)
        if progress is not None and now >= next_progress:
            progress(snap, why)
            next_progress = now + progress_every
        confirmations = confirmations + 1 if settled else 0
        if confirmations >= settle_confirmations:
            return True, snap, ""
        if now > deadline:
            return False, snap, why
        time.sleep(1.0 if not settled else 1.5)


# --------------------------------------------------------------------------------------------- summary tables


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in cells[1:]]
    return "\n".join(lines)


def summary_by_status() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT status, coalesce(nullif(stop_reason, ''), '-'), count(*) FROM contact_campaigns "
                       "GROUP BY 1, 2 ORDER BY 1, 3 DESC")
        rows = [list(r) for r in cursor.fetchall()]
    return _table(["enrolment status", "reason", "contacts"], rows)


_BY_NODE_SQL = """
WITH ev AS (
    SELECT outbound_message_id AS id,
           bool_or(event_type = 'delivered') AS delivered,
           bool_or(event_type = 'open' AND NOT is_machine) AS human_open,
           bool_or(event_type = 'click' AND NOT is_machine) AS human_click,
           bool_or(event_type = 'bounce') AS bounced,
           bool_or(event_type IN ('unsubscribe', 'group_unsubscribe')) AS unsubscribed,
           bool_or(event_type = 'spamreport') AS spam
    FROM message_events WHERE outbound_message_id IS NOT NULL GROUP BY outbound_message_id
), rep AS (
    SELECT outbound_message_id AS id, bool_or(NOT is_auto_reply) AS human, bool_or(is_auto_reply) AS auto,
           bool_or(stop_request) AS stop
    FROM inbound_messages WHERE outbound_message_id IS NOT NULL GROUP BY outbound_message_id
)
SELECT om.node_id,
       count(*) FILTER (WHERE om.sent_at IS NOT NULL),
       count(*) FILTER (WHERE ev.delivered),
       count(*) FILTER (WHERE ev.human_open),
       count(*) FILTER (WHERE ev.human_click),
       count(*) FILTER (WHERE rep.human),
       count(*) FILTER (WHERE rep.auto),
       count(*) FILTER (WHERE ev.bounced),
       count(*) FILTER (WHERE ev.unsubscribed OR rep.stop),
       count(*) FILTER (WHERE ev.spam),
       count(*) FILTER (WHERE om.status IN ('suppressed', 'canceled'))
FROM outbound_messages om
LEFT JOIN ev ON ev.id = om.id
LEFT JOIN rep ON rep.id = om.id
GROUP BY om.node_id ORDER BY min(om.id)
"""


def summary_by_node() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_BY_NODE_SQL)
        rows = [list(r) for r in cursor.fetchall()]
    totals = ["total"] + [sum(r[i] for r in rows) for i in range(1, 11)]
    return _table(["node", "sent", "delivered", "opens", "clicks", "replies", "auto-replies", "bounces",
                   "opt-outs", "spam", "not sent"], rows + [totals])


# --------------------------------------------------------------------------------------------- invariants


@dataclass
class InvariantReport:
    failures: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # name -> how many items the check looked at

    def fail(self, message: str) -> None:
        self.failures.append(message)


def _as_epoch_key(value: dt.datetime) -> int:
    return int(value.timestamp())


def check_invariants(*, anchor: Any, sim_url: str | None, grace_real_seconds: float = 2.0,
                     tenant_id: int | None = None) -> InvariantReport:
    """Everything that must hold after a run; each failure is one line naming the rows involved.

    `anchor` (demo.seeding.ClockAnchor) puts the wall-clock time Django's auto_now_add columns hold (e.g.
    ContactUnsubscribe.created_at) on the virtual clock the business columns use. A send claimed within
    `grace_real_seconds` after an opt-out was written is a race the system cannot see (the policy check ran
    first) and is not counted.
    """
    report = InvariantReport()
    _check_no_double_sends(report)
    if sim_url:
        _check_simulator_messages(report, sim_url)
        _check_webhook_events_stored_once(report, sim_url)
    _check_opt_outs_honoured(report, anchor=anchor, grace=dt.timedelta(seconds=grace_real_seconds * anchor.speed))
    _check_replies_stop(report, grace=dt.timedelta(seconds=grace_real_seconds * anchor.speed))
    _check_final_states(report, tenant_id=tenant_id)
    return report


def _check_no_double_sends(report: InvariantReport) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT dedupe_key, count(*) FROM outbound_messages GROUP BY 1 HAVING count(*) > 1")
        for key, n in cursor.fetchall():
            report.fail(f"double send: {n} outbound messages share dedupe key {key}")
        cursor.execute(
            "SELECT contact_campaign_id, node_id, node_visit, array_agg(id ORDER BY id) FROM outbound_messages "
            "WHERE contact_campaign_id IS NOT NULL AND (sent_at IS NOT NULL OR provider_message_id IS NOT NULL "
            "OR status IN ('sent', 'sending', 'unknown')) GROUP BY 1, 2, 3 HAVING count(*) > 1"
        )
        for cc_id, node_id, visit, ids in cursor.fetchall():
            report.fail(f"double send: contact campaign {cc_id} node {node_id} visit {visit} sent by messages {ids}")
        cursor.execute("SELECT count(*) FROM outbound_messages")
        report.checked["outbound messages"] = cursor.fetchone()[0]


def _check_simulator_messages(report: InvariantReport, sim_url: str) -> None:
    from messaging.models import OutboundMessage

    mails = sim_get(sim_url, "/_sim/messages", timeout=120).get("messages", [])
    report.checked["mails at the simulator"] = len(mails)
    by_id: Counter[str] = Counter()
    for mail in mails:
        outbound_id = (mail.get("custom_args") or {}).get("outbound_message_id")
        if not outbound_id:
            report.fail(f"simulator mail {mail.get('x_message_id')} to {mail.get('to')} has no outbound_message_id")
            continue
        by_id[outbound_id] += 1
    for outbound_id, n in sorted(by_id.items()):
        if n > 1:
            report.fail(f"double send: outbound message {outbound_id} reached the simulator {n} times")
    accepted = set(by_id)
    ours = {str(i) for i in OutboundMessage.objects.filter(provider_message_id__isnull=False)
            .values_list("id", flat=True)}
    ours |= {str(i) for i in OutboundMessage.objects.filter(status__in=["sent", "unknown"])
             .values_list("id", flat=True)}
    for missing in sorted(ours - accepted, key=int)[:20]:
        report.fail(f"outbound message {missing} is marked sent but the simulator never received it")
    for unknown in sorted(accepted - ours, key=int)[:20]:
        report.fail(f"the simulator received outbound message {unknown}, which is not marked sent")


def _sim_event_key(event: dict[str, Any]) -> tuple[str, str, int, str]:
    return (str(event.get("email", "")).strip().lower(), str(event.get("event", "")), int(event["timestamp"]),
            str(event.get("url") or ""))


def webhook_event_differences(*, posted: list[dict[str, Any]], stored: Iterable[tuple[str, str, int, str]],
                              report: InvariantReport) -> None:
    """Compare the simulator's event log (`/_sim/events` rows) with the stored events' content keys
    (email, event, epoch second, url): each original the web server accepted must be stored exactly once;
    the simulator's copies (same event again, or again with a new sg_event_id) must add nothing."""
    expected: Counter[tuple] = Counter()
    not_posted: Counter[str] = Counter()
    copies = 0
    for row in posted:
        if row.get("copy") != "original":
            copies += 1
            continue
        if row.get("delivery_status") != "delivered":
            not_posted[f"{row.get('delivery_status')} (HTTP {row.get('status_code')})"] += 1
            continue
        expected[_sim_event_key(row["event"])] += 1
    for state, n in not_posted.items():
        report.fail(f"webhook: {n} events never accepted by the web server: {state}")
    stored_keys: Counter[tuple] = Counter(stored)
    report.checked["webhook events posted (originals)"] = sum(expected.values())
    report.checked["webhook event copies posted (duplicates)"] = copies
    report.checked["message events stored"] = sum(stored_keys.values())
    for key in list(expected - stored_keys)[:20]:
        report.fail(f"webhook event lost: {key} posted, stored {stored_keys.get(key, 0)} of {expected[key]}")
    for key in list(stored_keys - expected)[:20]:
        report.fail(f"webhook event stored twice: {key} stored {stored_keys[key]} times, "
                    f"posted {expected.get(key, 0)}")


def _check_webhook_events_stored_once(report: InvariantReport, sim_url: str) -> None:
    """Each event the simulator posted successfully is one MessageEvent: none lost, none twice (a resent
    batch, a duplicate event and a duplicate with a new sg_event_id must all be absorbed)."""
    from django.db import connection
    from django.db.models import Count

    from messaging.models import InboundMessage, MessageEvent, WebhookDelivery

    posted = sim_get(sim_url, "/_sim/events", timeout=120).get("events", [])
    stored = [(email.lower(), kind, _as_epoch_key(occurred_at), url or "") for email, kind, occurred_at, url in
              MessageEvent.objects.filter(webhook_delivery__isnull=False).values_list("email", "event_type",
                                                                                       "occurred_at", "url")]
    webhook_event_differences(posted=posted, stored=stored, report=report)
    with connection.cursor() as cursor:
        cursor.execute("SELECT provider, provider_event_id, count(*) FROM message_events WHERE provider_event_id <> '' "
                       "GROUP BY 1, 2 HAVING count(*) > 1")
        for provider, event_id, n in cursor.fetchall():
            report.fail(f"webhook event stored twice: {provider} event id {event_id} is in {n} rows")
        cursor.execute("SELECT dedupe_key, count(*) FROM message_events GROUP BY 1 HAVING count(*) > 1")
        for key, n in cursor.fetchall():
            report.fail(f"webhook event stored twice: content key {key} is in {n} rows")
    for status, n in (WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.PROCESSED).order_by()
                      .values_list("status").annotate(n=Count("id"))):
        report.fail(f"webhook: {n} stored deliveries left {status}")

    inbound = sim_get(sim_url, "/_sim/inbound", timeout=60).get("inbound", [])
    replies = [r for r in inbound if r.get("kind") == "reply"]
    report.checked["replies posted"] = len(replies)
    known = Counter(InboundMessage.objects.values_list("message_id_header", flat=True))
    for reply in replies:
        if reply.get("delivery_status") != "delivered":
            report.fail(f"reply from {reply.get('email')} never accepted: {reply.get('delivery_status')} "
                        f"(HTTP {reply.get('status_code')})")
            continue
        headers = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
        message_id = headers.get("message-id", "")
        if message_id and known.get(message_id, 0) != 1:
            report.fail(f"reply {message_id} from {reply.get('email')} stored {known.get(message_id, 0)} times")


def _claim_time(message: dict[str, Any]) -> dt.datetime | None:
    return message["claimed_at"] or message["send_started_at"] or message["sent_at"]


def _check_opt_outs_honoured(report: InvariantReport, *, anchor: Any, grace: dt.timedelta) -> None:
    """No mail claimed for sending after the address opted out (unsubscribe) or was suppressed."""
    from messaging.models import CommunicationSuppression, ContactUnsubscribe, OutboundMessage

    opt_outs: dict[tuple[int, str], list[tuple[dt.datetime, dt.datetime | None, str]]] = defaultdict(list)
    for tenant_id, value, created_at, source in ContactUnsubscribe.objects.filter(channel="email").values_list(
            "tenant_id", "channel_value", "created_at", "source"):
        opt_outs[(tenant_id, value.lower())].append((anchor.as_virtual(created_at), None, f"unsubscribed ({source})"))
    domain_blocks: dict[tuple[int, str], list[tuple[dt.datetime, dt.datetime | None, str]]] = defaultdict(list)
    for tenant_id, channel, value, created_at, expires_at, reason in CommunicationSuppression.objects.filter(
            channel__in=["email", "email_domain"]).values_list("tenant_id", "channel", "value", "created_at",
                                                               "expires_at", "reason"):
        target = domain_blocks if channel == "email_domain" else opt_outs
        target[(tenant_id, value.lower())].append((anchor.as_virtual(created_at), expires_at and anchor.as_virtual(
            expires_at), f"suppressed ({reason})"))
    report.checked["opt-outs and suppressions"] = sum(len(v) for v in opt_outs.values()) + sum(
        len(v) for v in domain_blocks.values())
    sent = OutboundMessage.objects.filter(channel="email").filter(
        status__in=["sent", "sending", "unknown"]).values("id", "tenant_id", "to_address", "claimed_at",
                                                         "send_started_at", "sent_at")
    for message in sent:
        address = message["to_address"].lower()
        claimed = _claim_time(message)
        if claimed is None:
            continue
        blocks = opt_outs.get((message["tenant_id"], address), []) + domain_blocks.get(
            (message["tenant_id"], address.rsplit("@", 1)[-1]), [])
        for since, until, why in blocks:
            if claimed > since + grace and (until is None or claimed < until):
                report.fail(f"sent to an opted-out address: message {message['id']} to {address} claimed "
                            f"{claimed:%Y-%m-%d %H:%M:%S} (virtual), {why} since {since:%Y-%m-%d %H:%M:%S}")


def _check_replies_stop(report: InvariantReport, *, grace: dt.timedelta) -> None:
    """A human reply ends its contact campaign: nothing of that enrolment is sent after it was processed."""
    from campaigns.models import ContactCampaign
    from messaging.models import InboundMessage, OutboundMessage

    replies = list(InboundMessage.objects.filter(is_auto_reply=False, outbound_message__contact_campaign__isnull=False)
                   .values("id", "from_email", "processed_at", "received_at",
                           "outbound_message__contact_campaign_id"))
    report.checked["human replies"] = len(replies)
    statuses = dict(ContactCampaign.objects.filter(
        id__in=[r["outbound_message__contact_campaign_id"] for r in replies]).values_list("id", "status"))
    for reply in replies:
        cc_id = reply["outbound_message__contact_campaign_id"]
        if statuses.get(cc_id) not in FINAL_STATUSES:
            report.fail(f"reply {reply['id']} from {reply['from_email']} did not end contact campaign {cc_id} "
                        f"(status {statuses.get(cc_id)})")
        processed = reply["processed_at"]
        if processed is None:
            report.fail(f"reply {reply['id']} from {reply['from_email']} was never processed")
            continue
        later = OutboundMessage.objects.filter(contact_campaign_id=cc_id, claimed_at__gt=processed + grace).filter(
            status__in=["sent", "sending", "unknown"]).values_list("id", "node_id")
        for message_id, node_id in later:
            report.fail(f"sent after a reply: message {message_id} ({node_id}) of contact campaign {cc_id} "
                        f"after reply {reply['id']} from {reply['from_email']}")


def _check_final_states(report: InvariantReport, *, tenant_id: int | None) -> None:
    from campaigns.models import ContactCampaign

    queryset = ContactCampaign.objects.all()
    if tenant_id is not None:
        queryset = queryset.filter(tenant_id=tenant_id)
    report.checked["contact campaigns"] = queryset.count()
    for cc_id, status, node, email in queryset.exclude(status__in=FINAL_STATUSES).values_list(
            "id", "status", "current_node_id", "contact__email")[:50]:
        report.fail(f"contact campaign {cc_id} ({email}) is {status} at node {node or '-'}, not final")


def check_pages(*, web_url: str, username: str, password: str, api_key: str, campaign_id: int) -> tuple[list[str],
                                                                                                    list[str]]:
    """Open what a newcomer opens after the run, through the real web server: the admin (logged in through
    its login form), a contact campaign's page, the API docs and the campaign's metrics. Returns (pages that
    answered 200, problems)."""
    import http.cookiejar
    import re as _re
    from urllib.parse import urlencode

    from campaigns.models import ContactCampaign

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    ok: list[str] = []
    problems: list[str] = []

    def fetch(path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> str:
        request = urllib.request.Request(f"{web_url}{path}", data=data, headers=headers or {})
        try:
            with opener.open(request, timeout=60) as response:
                body = response.read().decode("utf-8", "replace")
                ok.append(path)
                return body
        except urllib.error.HTTPError as exc:
            problems.append(f"GET {path} answered {exc.code}")
        except (OSError, ValueError) as exc:
            problems.append(f"GET {path} failed: {exc}")
        return ""

    login = fetch("/admin/login/")
    token = _re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
    if token is None:
        return ok, problems + ["the admin login page has no CSRF token"]
    fetch("/admin/login/?next=/admin/", data=urlencode({
        "csrfmiddlewaretoken": token.group(1), "username": username, "password": password, "next": "/admin/",
    }).encode(), headers={"Referer": f"{web_url}/admin/login/", "Content-Type": "application/x-www-form-urlencoded"})
    if not any(cookie.name == "sessionid" for cookie in jar):
        return ok, problems + ["logging in to the admin failed"]
    interesting = (ContactCampaign.objects.filter(campaign_id=campaign_id).exclude(stop_reason="completed")
                   .exclude(stop_reason="").order_by("id").values_list("id", "contact_id").first()
                   or ContactCampaign.objects.filter(campaign_id=campaign_id).values_list("id", "contact_id").first())
    pages = ["/admin/", "/admin/campaigns/campaign/", "/admin/campaigns/contactcampaign/",
             "/admin/messaging/outboundmessage/", "/admin/messaging/messageevent/",
             "/admin/messaging/inboundmessage/", "/api/docs/"]
    if interesting:
        pages.insert(3, f"/admin/campaigns/contactcampaign/{interesting[0]}/change/")
    for page in pages:
        fetch(page)
    auth = {"Authorization": f"Bearer {api_key}"}
    fetch(f"/api/v1/campaigns/{campaign_id}/metrics", headers=auth)
    if interesting:
        fetch(f"/api/v1/contacts/{interesting[1]}/campaigns", headers=auth)
    return ok, problems


def stuck_enrolments(limit: int = 15) -> str:
    """Why enrolments are not final yet: their node and pending actions (for a timed-out run)."""
    from campaigns.models import ContactCampaign, ScheduledAction

    lines = []
    for cc in ContactCampaign.objects.exclude(status__in=FINAL_STATUSES).select_related("contact")[:limit]:
        actions = list(ScheduledAction.objects.filter(contact_campaign=cc).exclude(status__in=["done", "canceled"])
                       .values_list("kind", "node_id", "status", "due_at"))
        pending = ", ".join(f"{k} {n} {s} due {d:%Y-%m-%d %H:%M}" for k, n, s, d in actions) or "no pending action"
        lines.append(f"  contact campaign {cc.pk} {cc.contact.email}: {cc.status} at {cc.current_node_id or '-'}; "
                     f"{pending}")
    return "\n".join(lines)
