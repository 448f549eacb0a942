"""Read-only work on the `replica` database alias (docs/scaling.md, "The read replica").

Reads go to the replica only inside `replica_reads()`, which the read-only surfaces open (the admin's
changelists of big tables, the campaign metrics API); everything else, and every write, uses `default`.
That way nothing that reads its own writes (the engine, webhooks, the dispatcher, an API call that
creates then returns a row) ever sees the replica's lag. Off unless DATABASE_REPLICA_URL is set (then
READ_REPLICA_ENABLED): in development and tests `replica` is the same server (a test mirror of `default`).

A replica further behind than REPLICA_MAX_LAG_SECONDS is skipped for that block: its reads go to the
primary (a lag check, one query per block, on the replica itself).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

REPLICA = "replica"
logger = logging.getLogger(__name__)
_reads_on: contextvars.ContextVar[str | None] = contextvars.ContextVar("replica_reads", default=None)


def replica_lag_seconds() -> float | None:
    """How far the replica's replay is behind (0 on a server that is not replaying; None if unreachable)."""
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT CASE WHEN pg_is_in_recovery() THEN "
                           "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END")
            return float(cursor.fetchone()[0])
    except DatabaseError:
        logger.warning("replica unreachable; reading from the primary")
        return None


@contextlib.contextmanager
def replica_reads() -> Iterator[str]:
    """Route this block's reads to the replica when it is enabled and fresh enough; yields the alias used."""
    alias = "default"
    if settings.READ_REPLICA_ENABLED and _reads_on.get() is None:
        lag = replica_lag_seconds()
        if lag is not None and lag <= settings.REPLICA_MAX_LAG_SECONDS:
            alias = REPLICA
    token = _reads_on.set(alias)
    try:
        yield alias
    finally:
        _reads_on.reset(token)


class ReplicaRouter:
    """Reads inside `replica_reads()` on the replica; writes, migrations and everything else on default."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _reads_on.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two ways in

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
