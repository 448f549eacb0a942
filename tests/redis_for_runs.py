"""A Redis database of its own for a test that runs the real processes (the end-to-end and chaos runs)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from demo import processes


@contextlib.contextmanager
def exclusive_redis_for_run(url: str, *, lock_key: str, what: str, env_name: str) -> Iterator[str]:
    """`url`'s database, flushed and owned for the run; the test fails, naming `env_name`, if another run
    holds it. Only taking it is guarded: an error of the run itself goes through unchanged."""
    with contextlib.ExitStack() as stack:
        try:
            owned = stack.enter_context(processes.exclusive_redis_db(url, lock_key=lock_key, what=what))
        except processes.DemoError as exc:
            pytest.fail(f"{exc}; set {env_name}")
        yield owned
