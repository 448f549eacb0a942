"""The demo's real processes: their configuration and environment, the services they need, and a group
that starts them, waits until each is ready, and stops every one it started.

Shared by `make demo` (demo/run_demo.py) and the end-to-end test (tests/test_end_to_end.py):

- `DemoConfig`: ports, URLs, the clock speed and the environment every process gets;
- `preflight()`, `database_recreate()`, `redis_flush()`: PostgreSQL and Redis before a run;
- `ProcessGroup`: starts processes in their own process groups with logs in var/demo/*.log, waits until
  each is ready, and stops every one it started (also on Ctrl-C, errors, or when this process dies);
- `start_system()`: the simulator, web server, worker, dispatcher (beat, Flower);
- `sim_get()` / `sim_post()`: the simulator's /_sim/* endpoints.

Nothing here needs Django set up.
"""
from __future__ import annotations

import contextlib
import ctypes
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql

from demo.scenario import BASE_DIR, DEMO_CLOCK_SPEED
from outreach.queues import QUEUE_NAMES
from outreach.settings.env import database_url as database_url_of
from simulators.sendgrid.signing import generate_key_pair, private_key_pem

DEFAULT_LOG_DIR = BASE_DIR / "var" / "demo"
PYTHON = sys.executable
# Local stand-ins only: never send these requests through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DemoError(RuntimeError):
    """Something the demo cannot go on without (a service missing, a process that died)."""


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the demo (raised by its signal handler): stop everything and leave."""


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
    clock_speed: float = DEMO_CLOCK_SPEED
    log_dir: Path = DEFAULT_LOG_DIR
    settings_module: str = "demo.settings"
    inbound_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(64))
    # Random per run, and the demo's simulator accepts it alone: another instance reaching the demo's
    # simulator with default settings gets SendGrid's 401, so its events never land in the demo.
    sendgrid_api_key: str = field(default_factory=lambda: f"SG.demo-{secrets.token_urlsafe(24)}")
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
            # A local mode with secrets of this run only (nothing signed by a public default is accepted).
            "OUTREACH_LOCAL_MODE": "1",
            "SECRET_KEY": self.secret_key,
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
    return database_url_of(db)


# --------------------------------------------------------------------------------------------- preflight


def preflight(*, database_url: str, redis_url: str) -> list[str]:
    """What is missing to run the demo, in words a newcomer can act on ([] = all there)."""
    problems = []
    parts = urlsplit(database_url)
    try:
        with psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                             user=parts.username or None, password=parts.password or None, dbname="postgres",
                             connect_timeout=5):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        problems.append(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432} as user "
                        f"{parts.username or '(default)'}: {str(exc).strip().splitlines()[0]}\n"
                        "    start it (e.g. `sudo service postgresql start`) or set DEMO_DATABASE_URL")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        redis_parts = urlsplit(redis_url)
        problems.append(f"Redis is not reachable at {redis_parts.hostname}:{redis_parts.port or 6379}: {exc}\n"
                        "    start it (e.g. `redis-server --daemonize yes`) or set DEMO_REDIS_URL")
    return problems


def database_recreate(database_url: str) -> None:
    """Drop (closing its connections) and create the database named by the URL."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432, user=parts.username or None,
                         password=parts.password or None, dbname="postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", [name])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def redis_flush(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive_redis_db(url: str, *, lock_key: str, what: str) -> Iterator[str]:
    """A Redis database for one run's processes, flushed before and after. Refuses (DemoError) one that
    another live run holds (a second pytest session of the same checkout); a lock left by a run that was
    killed is taken over."""
    client = redis.Redis.from_url(url)
    if not client.set(lock_key, os.getpid(), nx=True, ex=600):
        holder = int(client.get(lock_key) or 0)
        if holder and holder != os.getpid() and _pid_alive(holder):
            raise DemoError(f"{url} is in use by another {what} (pid {holder})")
    client.flushdb()
    client.set(lock_key, os.getpid(), ex=600)
    try:
        yield url
    finally:
        client.flushdb()


# --------------------------------------------------------------------------------------------- processes


def die_with_parent() -> None:
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
    env: dict[str, str] | None = None  # None: the group's

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

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
              append_log: bool = False) -> ManagedProcess:
        if name in self.processes and self.processes[name].alive:
            raise DemoError(f"{name} is already running")
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab" if append_log else "wb")  # noqa: SIM115 - the child keeps it; ours is closed below
        try:
            popen = subprocess.Popen(argv, cwd=self.cwd, env=env or self.env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # noqa: PLW1509
        finally:
            log.close()
        process = ManagedProcess(name=name, argv=argv, popen=popen, log_path=log_path, env=env)
        self.processes[name] = process
        return process

    def restart(self, name: str) -> ManagedProcess:
        """Start an exited process again with the same command and environment, its log appended to."""
        previous = self.processes[name]
        return self.start(name, previous.argv, env=previous.env, append_log=True)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the process's whole group (a gunicorn master and its workers alike)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.processes[name].popen.pid, sig)

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

    worker_argv = [PYTHON, "-m", "celery", "-A", "outreach", "worker", "-Q", ",".join(QUEUE_NAMES), "-P", "threads",
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


# --------------------------------------------------------------------------------------------- the simulator's /_sim/*


def sim_get(sim_url: str, path: str, *, timeout: float = 30.0) -> Any:
    with _OPENER.open(f"{sim_url}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def sim_post(sim_url: str, path: str, data: dict | None = None, *, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(f"{sim_url}{path}", data=json.dumps(data or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())
