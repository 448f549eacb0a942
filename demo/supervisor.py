"""Restart on exit, the way production runs the processes (systemd `Restart=always`, a container's restart
policy): a thread that watches a ProcessGroup and starts again, with the same command and environment, any
process that exited, counting how often.

The chaos run (demo/chaos.py) uses it so that a worker killed with -9, or a dispatcher that gives up on a
database error, comes back by itself; the restart counts end up in its table. `paused()` holds restarts
while a fault is being set up (a Redis restart writes the clock anchor back before anything may start).

The processes it restarts are children of its thread, and PR_SET_PDEATHSIG (demo/processes.py) ends them
when that thread ends: stop the supervisor only on the way to stopping the group.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator

from demo.processes import ProcessGroup


class Supervisor:
    def __init__(self, group: ProcessGroup, *, names: Iterable[str] | None = None, check_every: float = 0.3,
                 restart_delay: float = 0.5) -> None:
        self.group = group
        self.names = set(names) if names is not None else None  # None: every process of the group
        self.check_every = check_every
        # Like systemd's RestartSec: a process that dies at once is not restarted in a tight loop.
        self.restart_delay = restart_delay
        self.restarts: Counter[str] = Counter()
        self.failures: list[str] = []  # restarts that could not be done, with the reason
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the group stops its processes, so nothing is restarted on the way out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            yield

    def summary(self) -> str:
        """`worker 3, dispatcher 1` (or `0`)."""
        return ", ".join(f"{name} {n}" for name, n in sorted(self.restarts.items()) if n) or "0"

    def _loop(self) -> None:
        while not self._stop.wait(self.check_every):
            with self._lock:
                for name in self._exited():
                    time.sleep(self.restart_delay)
                    if self._stop.is_set():
                        return
                    self._restart(name)

    def _exited(self) -> list[str]:
        return [name for name, process in list(self.group.processes.items())
                if (self.names is None or name in self.names) and not process.alive]

    def _restart(self, name: str) -> None:
        try:
            self.group.restart(name)
        except Exception as exc:  # noqa: BLE001 - a supervisor keeps watching the others whatever happens
            self.failures.append(f"{name}: could not restart: {exc}")
            return
        self.restarts[name] += 1
