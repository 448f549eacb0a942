"""Counting: pending facts into the rollup tables, exactly once, by one process at a time.

Messaging stores a pending fact in the same transaction as the event (or reply) it describes
(analytics/listeners.py); a pass deletes a batch of pending facts and adds them to the rollups in one
transaction. A fact is thus counted if and only if its event committed, and at most once: a replayed or
re-processed event is not new to message_events, so it writes no fact. A transaction-level advisory lock
makes passes (and rebuilds) take turns, which is what lets the unique counts (first human open / click of
a message) be kept without races, and moved when an earlier event arrives late.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from analytics.facts import FACT_COLUMNS, FACTS_SQL, FIRST_KIND
from analytics.metrics import COUNTS
from analytics.tables import COLUMN_TYPES, TABLES, RollupTable
from outreach.db import fast_cursor

ROLLUP_LOCK = 0x616E616C79746963  # "analytic": one rollup writer at a time
PASS_BATCH = 20_000

# A data-modifying WITH must be at the top: the facts read the deleted rows from it. ARRAY(...) runs the
# batch's id list once (an init plan): with `id IN (subquery)` and a queue table's stale statistics the planner
# chose a nested loop re-running the subquery per row, quadratic in the batch (4 s for 5,000 rows).
_TAKE_PREFIX = """
WITH taken AS (
    DELETE FROM metrics_pending_facts WHERE id = ANY(ARRAY(
        SELECT id FROM metrics_pending_facts ORDER BY id LIMIT %(limit)s))
    RETURNING tenant_id, message_id, kind, detail, email, occurred_at, 1 AS n)
"""


def rollup_lock(*, wait: bool = True) -> bool:
    """Take the rollup writer's turn (released at the end of the caller's transaction): wait for it, or
    return False at once when another writer has it."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        return bool(cursor.fetchone()[0])


def facts_query(source: str, params: dict[str, Any], *, prefix: str = "") -> list[dict]:
    """The facts of a source (see analytics.facts), as dicts (metric None: an event no metric counts)."""
    with connection.cursor() as cursor:
        cursor.execute(prefix + FACTS_SQL.replace("{source}", source),
                       {"default_tz": settings.ANALYTICS_DEFAULT_TIME_ZONE, **params})
        return [dict(zip(FACT_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def _moved(fact: dict, *, metric: str, at: dt.datetime, n: int) -> dict:
    """The same message's fact for another metric at another time (its buckets recomputed)."""
    local_day = at.astimezone(zoneinfo.ZoneInfo(fact["tz"])).date()
    hour = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return {**fact, "metric": metric, "occurred_at": at, "hour": hour, "day": local_day, "n": n}


def _firsts_candidates(facts: list[dict]) -> dict[tuple[int, str], dict]:
    """Per (message, kind): the earliest human open / click of this batch."""
    earliest: dict[tuple[int, str], dict] = {}
    for fact in facts:
        if fact["metric"] in FIRST_KIND and fact["message_id"] is not None:
            key = (fact["message_id"], FIRST_KIND[fact["metric"]][0])
            if key not in earliest or fact["occurred_at"] < earliest[key]["occurred_at"]:
                earliest[key] = fact
    return earliest


def firsts_apply(facts: list[dict]) -> list[dict]:
    """The unique-count facts this batch makes: +1 for a message's first human open (click), and, when an
    earlier one arrives late, -1 at the old first and +1 at the new. Call under the rollup lock."""
    earliest = _firsts_candidates(facts)
    if not earliest:
        return []
    keys = list(earliest)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT message_id, kind, occurred_at FROM metrics_message_firsts "
            "WHERE (message_id, kind) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        known = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
        changes = [(key, fact) for key, fact in earliest.items()
                   if key not in known or fact["occurred_at"] < known[key]]
        cursor.execute(
            "INSERT INTO metrics_message_firsts (message_id, kind, occurred_at) "
            "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) "
            "ON CONFLICT (message_id, kind) DO UPDATE SET occurred_at = EXCLUDED.occurred_at",
            [[k[0] for k, _ in changes], [k[1] for k, _ in changes], [f["occurred_at"] for _, f in changes]],
        )
    made: list[dict] = []
    for key, fact in changes:
        metric = FIRST_KIND[fact["metric"]][1]
        made.append(_moved(fact, metric=metric, at=fact["occurred_at"], n=1))
        if key in known:
            made.append(_moved(fact, metric=metric, at=known[key], n=-1))
    return made


Vectors = dict[tuple, list[int]]  # key (table.columns order) -> counts (COUNTS order)
_INDEX = {name: i for i, name in enumerate(COUNTS)}


def vectors_add(vectors: Vectors, key: tuple, metric: str, n: int) -> None:
    """Add n to one count of one key (a metric outside COUNTS, e.g. an unknown reply class, is not kept)."""
    index = _INDEX.get(metric)
    if index is not None:
        vectors.setdefault(key, [0] * len(COUNTS))[index] += n


def _aggregate(table: RollupTable, facts: list[dict]) -> Vectors:
    vectors: Vectors = {}
    for fact in facts:
        if table.keeps(fact):
            vectors_add(vectors, tuple(fact[c] for c in table.columns), fact["metric"], fact["n"])
    return vectors


def table_upsert(table: RollupTable, vectors: Vectors) -> None:
    """Add count vectors to a table in one statement (under the rollup lock: one writer at a time)."""
    if not vectors:
        return
    keys = sorted(vectors, key=repr)
    arrays = [[key[i] for key in keys] for i in range(len(table.columns))]
    arrays += [[vectors[key][i] for key in keys] for i in range(len(COUNTS))]
    unnest = ", ".join([f"%b::{COLUMN_TYPES[c]}[]" for c in table.columns] + ["%b::bigint[]"] * len(COUNTS))
    added = ", ".join(f"{c} = {table.name}.{c} + EXCLUDED.{c}" for c in COUNTS)
    with fast_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table.name} ({', '.join((*table.columns, *COUNTS))}) SELECT * FROM unnest({unnest}) "
            f"ON CONFLICT ({', '.join(table.conflict)}) DO UPDATE SET {added}",
            arrays,
        )


def rollups_add(facts: list[dict]) -> None:
    """Add facts to every rollup table."""
    for table in TABLES:
        table_upsert(table, _aggregate(table, facts))


def rollup_pass(*, limit: int = PASS_BATCH, wait: bool = True) -> int:
    """Count up to `limit` pending facts (oldest first). Returns how many were taken (0 also when `wait` is
    false and another writer has the turn)."""
    with transaction.atomic():
        if not rollup_lock(wait=wait):
            return 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM (SELECT 1 FROM metrics_pending_facts LIMIT %s) AS p", [limit])
            if not cursor.fetchone()[0]:
                return 0
        taken = facts_query("SELECT * FROM taken", {"limit": limit}, prefix=_TAKE_PREFIX)
        facts = [f for f in taken if f["metric"] is not None]  # listeners write only counted kinds
        rollups_add(facts + firsts_apply(facts))
    return len(taken)


def rollups_catch_up(*, limit: int = PASS_BATCH, max_passes: int | None = None, wait: bool = True) -> int:
    """Passes until nothing is pending, or `max_passes` were made (what verify, rebuild and the periodic
    task run). Returns how many facts were counted."""
    total = passes = 0
    while (max_passes is None or passes < max_passes) and (taken := rollup_pass(limit=limit, wait=wait)):
        total += taken
        passes += 1
    return total
