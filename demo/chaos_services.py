"""The PostgreSQL and Redis the chaos run may break: instances of its own, never the shared ones.

- `OwnPostgres`: a cluster made with Debian's `pg_createcluster` on its own port (5445 by default, trust
  authentication on 127.0.0.1 only, fsync off: it holds nothing worth keeping), restarted with
  `pg_ctlcluster ... stop -m immediate` (every connection cut, as in a crash) and `start`;
- `OwnRedis`: a second `redis-server` on its own port with no persistence (`--save "" --appendonly no`),
  killed with -9 and started again empty, as a Redis without persistence comes back after a crash.

Nothing here needs Django set up.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from demo.processes import DemoError, die_with_parent

POSTGRES_ROOT = Path("/usr/lib/postgresql")


def _run(argv: list[str], *, timeout: float = 120.0) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise DemoError(f"`{' '.join(argv)}` failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result.stdout


def installed_postgres_version() -> str:
    """The newest PostgreSQL major version installed the Debian way (/usr/lib/postgresql/N)."""
    versions = sorted((p.name for p in POSTGRES_ROOT.glob("*") if p.name.isdigit()), key=int) \
        if POSTGRES_ROOT.is_dir() else []
    if not versions or shutil.which("pg_createcluster") is None:
        raise DemoError("the chaos run needs PostgreSQL installed the Debian way (pg_createcluster, "
                        "apt-get install postgresql) to make a cluster of its own")
    return versions[-1]


@dataclass
class OwnPostgres:
    port: int = 5445
    name: str = "outreach-chaos"
    version: str = field(default_factory=installed_postgres_version)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def ensure_running(self) -> None:
        """Create the cluster if it does not exist yet, then start it if it is down; wait until it answers."""
        if not Path(f"/etc/postgresql/{self.version}/{self.name}").is_dir():
            _run(["pg_createcluster", self.version, self.name, "--port", str(self.port), "--start-conf=manual",
                  "-o", "fsync=off", "-o", "synchronous_commit=off",
                  "-o", "full_page_writes=off", "-o", "max_connections=200",
                  "--", "--auth-local=trust", "--auth-host=trust"])
        if not self.answers():
            _run(["pg_ctlcluster", self.version, self.name, "start"])
        self.wait_until_up()

    def answers(self) -> bool:
        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise DemoError(f"PostgreSQL cluster {self.version}/{self.name} did not answer on port {self.port} "
                                f"within {timeout:.0f}s")
            time.sleep(0.3)

    def crash_and_restart(self, *, down_seconds: float) -> None:
        """Stop in immediate mode (no checkpoint, every connection cut), stay down, start, wait until it answers."""
        _run(["pg_ctlcluster", self.version, self.name, "stop", "-m", "immediate"])
        time.sleep(down_seconds)
        _run(["pg_ctlcluster", self.version, self.name, "start"])
        self.wait_until_up()


@dataclass
class OwnRedis:
    port: int = 6450
    log_path: Path | None = None
    _popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise DemoError("the chaos run needs redis-server (apt-get install redis-server) for a Redis of its own")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            self._popen = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # noqa: PLW1509
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        self.wait_until_up()

    def wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                if self._popen is not None and self._popen.poll() is not None:
                    raise DemoError(f"redis-server on port {self.port} exited with {self._popen.returncode} "
                                    f"(is the port taken?)") from None
                if time.monotonic() > deadline:
                    raise DemoError(f"redis-server on port {self.port} did not answer within {timeout:.0f}s") from None
                time.sleep(0.2)

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        self._popen = None
