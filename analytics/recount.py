"""Recounting from raw: what the rollups of a range should hold, compared (verify) or written (rebuild).

A range is a span of UTC dates [first, last]: hourly rows of hours in it, daily rows of days in it. The raw
events read are a day wider on each side, since a tenant's local day may begin or end on the UTC day
beside it. Both commands first count everything pending, inside one REPEATABLE READ transaction: the
recount then sees exactly the events the rollups have counted (an event committed meanwhile is neither
in the snapshot nor taken from the pending facts, and is counted by a later pass).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from analytics.facts import FACTS_SQL, RAW_SOURCE_SQL
from analytics.metrics import COUNTS
from analytics.rollups import Vectors, rollup_lock, rollups_catch_up, table_upsert, vectors_add
from analytics.tables import TABLES, RollupTable


@dataclass(frozen=True)
class DayRange:
    first: dt.date
    last: dt.date

    def hours(self) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(self.first, dt.time(), dt.UTC)
        return start, dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), dt.UTC)

    def raw_window(self) -> tuple[dt.datetime, dt.datetime]:
        lo, hi = self.hours()
        return lo - dt.timedelta(days=1), hi + dt.timedelta(days=1)

    def bucket_condition(self, table: RollupTable) -> tuple[str, dict]:
        if table.bucket == "hour":
            lo, hi = self.hours()
            return "hour >= %(b0)s AND hour < %(b1)s", {"b0": lo, "b1": hi}
        return "day >= %(b0)s AND day <= %(b1)s", {"b0": self.first, "b1": self.last}


@dataclass
class Difference:
    table: str
    key: tuple
    metric: str
    rollup: int
    recount: int


def _recount(table: RollupTable, days: DayRange) -> Vectors:
    columns = ", ".join(table.columns)
    where, bucket_params = days.bucket_condition(table)
    lo, hi = days.raw_window()
    facts = FACTS_SQL.replace("{source}", RAW_SOURCE_SQL)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, metric, sum(n) FROM ({facts}) AS f "
            f"WHERE metric IS NOT NULL AND {table.keeps_sql()} AND {where} GROUP BY {columns}, metric",
            {"default_tz": settings.ANALYTICS_DEFAULT_TIME_ZONE, "lo": lo, "hi": hi, **bucket_params},
        )
        vectors: Vectors = {}
        for row in cursor.fetchall():
            vectors_add(vectors, tuple(row[:-2]), row[-2], int(row[-1]))
    return {key: counts for key, counts in vectors.items() if any(counts)}


def _stored(table: RollupTable, days: DayRange) -> Vectors:
    where, params = days.bucket_condition(table)
    width = len(table.columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join((*table.columns, *COUNTS))} FROM {table.name} WHERE {where}", params)
        rows = {tuple(row[:width]): [int(v) for v in row[width:]] for row in cursor.fetchall()}
    return {key: counts for key, counts in rows.items() if any(counts)}


def _differences(table: RollupTable, days: DayRange) -> list[Difference]:
    stored, recounted = _stored(table, days), _recount(table, days)
    zero = [0] * len(COUNTS)
    return [Difference(table.name, key, metric, a, b)
            for key in sorted(set(stored) | set(recounted), key=repr)
            for metric, a, b in zip(COUNTS, stored.get(key, zero), recounted.get(key, zero), strict=True) if a != b]


def _counted_snapshot(*, outermost: bool) -> None:
    """Enter REPEATABLE READ, take the writer's turn, count what is pending (see the module docstring).
    Inside a caller's transaction (a test's) the level is the caller's: it must be set before any query."""
    if outermost:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    rollup_lock()
    rollups_catch_up()


def rollups_verify(*, days: DayRange) -> list[Difference]:
    """Every rollup row of the range that differs from a recount of the raw events (empty: all agree)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        _counted_snapshot(outermost=outermost)
        return [d for table in TABLES for d in _differences(table, days)]


def _firsts_rebuild(days: DayRange) -> None:
    """Firsts of the messages opened / clicked in the range: the earliest human event over all time."""
    lo, hi = days.raw_window()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_message_firsts (message_id, kind, occurred_at) "
            "SELECT e.outbound_message_id, e.event_type, min(e.occurred_at) FROM message_events e "
            "WHERE e.event_type IN ('open', 'click') AND NOT e.is_machine AND e.tenant_id IS NOT NULL "
            "AND e.outbound_message_id IN (SELECT m.outbound_message_id FROM message_events m "
            "  WHERE m.event_type IN ('open', 'click') AND NOT m.is_machine "
            "  AND m.occurred_at >= %s AND m.occurred_at < %s) "
            "GROUP BY 1, 2 ON CONFLICT (message_id, kind) DO UPDATE SET occurred_at = EXCLUDED.occurred_at",
            [lo, hi],
        )


def rollups_rebuild(*, days: DayRange) -> int:
    """Replace the range's rollup rows by a recount from raw. Returns how many rows it wrote."""
    written = 0
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        _counted_snapshot(outermost=outermost)
        _firsts_rebuild(days)
        for table in TABLES:
            where, params = days.bucket_condition(table)
            recounted = _recount(table, days)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table.name} WHERE {where}", params)
            table_upsert(table, recounted)
            written += len(recounted)
    return written

