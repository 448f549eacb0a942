"""Native PostgreSQL range partitions by time, for the append-only tables (docs/storage.md).

Each partitioned table is declared once in `PARTITIONED_TABLES`: its time column, its period (a calendar
month or an ISO week, UTC) and how many periods ahead must exist. Partitions are named
``<table>_p<YYYYMMDD>`` after their first day, and every table also has a ``<table>_default`` partition,
so an insert never fails for want of a partition (a row far in the past or future lands there).

Partitions are created ahead of time by the migrations that partition a table and by the periodic task
`outreach.partitions_ensure`; retention (`outreach.retention`) drops whole partitions. Neither ever
rewrites rows of a live partition: the only rows moved are those that had landed in the default partition
for a range that now gets its own partition (creating a partition over rows the default holds is refused
by PostgreSQL otherwise).

The generic helpers live here, in the lowest layer; the apps own their tables and list them below by name
only (this module imports no app).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

MONTH = "month"
WEEK = "week"


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    column: str
    period: str  # MONTH or WEEK
    ahead: int  # periods after the current one that must exist


PARTITIONED_TABLES: dict[str, PartitionedTable] = {
    t.table: t for t in (
        # Partitioned by the provider's event time: the dedupe keys hold that time, so they can include the
        # partition key and still be exact (docs/storage.md, "Dedupe across partitions").
        PartitionedTable("message_events", "occurred_at", MONTH, ahead=3),
        # Raw bodies go after 30 days: weekly partitions let them go close to that.
        PartitionedTable("webhook_deliveries", "received_at", WEEK, ahead=4),
        # Append-only history, read by enrolment (the timeline); kept 25 months.
        PartitionedTable("campaign_transitions", "created_at", MONTH, ahead=3),
        # The AI call log (cost reporting): a year and a month.
        PartitionedTable("ai_calls", "created_at", MONTH, ahead=3),
    )
}


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.datetime | None  # None for the default partition
    end: dt.datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def period_start(moment: dt.datetime, period: str) -> dt.datetime:
    """The first instant (UTC) of the period holding `moment`."""
    moment = moment.astimezone(dt.UTC)
    day = moment.date() if period == MONTH else moment.date() - dt.timedelta(days=moment.weekday())
    if period == MONTH:
        day = day.replace(day=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def next_period(start: dt.datetime, period: str) -> dt.datetime:
    if period == WEEK:
        return start + dt.timedelta(days=7)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def partition_name(table: str, start: dt.datetime) -> str:
    return f"{table}_p{start:%Y%m%d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def _parse_bound(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    match = _BOUND.search(text)
    if match is None:  # DEFAULT
        return None, None
    start, end = (dt.datetime.fromisoformat(v).astimezone(dt.UTC) for v in match.groups())
    return start, end


def partitions(table: str, *, cursor: CursorWrapper | None = None) -> list[Partition]:
    """The table's partitions, oldest first, the default partition last."""
    sql = ("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
           "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)")
    if cursor is None:
        with connection.cursor() as own:
            own.execute(sql, [table])
            rows = own.fetchall()
    else:
        cursor.execute(sql, [table])
        rows = cursor.fetchall()
    found = [Partition(name, *_parse_bound(bound)) for name, bound in rows]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda p: (p.is_default, p.start or far))


def is_partitioned(table: str, *, cursor: CursorWrapper) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return bool(row and row[0])


def _create_partition(cursor: CursorWrapper, spec: PartitionedTable, start: dt.datetime) -> str:
    """One partition [start, next period); rows the default partition holds for that range move into it."""
    name = partition_name(spec.table, start)
    end = next_period(start, spec.period)
    default = default_partition_name(spec.table)
    # Created detached, filled from the default, then attached: attaching checks the default holds no row
    # of the range, which the move has just made true.
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{spec.table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{default}" WHERE "{spec.column}" >= %s AND "{spec.column}" < %s '
        f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
        [start, end],
    )
    cursor.execute(f'ALTER TABLE "{spec.table}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
                   [start.isoformat(), end.isoformat()])
    return name


def partitions_ensure(*, now: dt.datetime, tables: list[str] | None = None, since: dt.datetime | None = None,
                      cursor: CursorWrapper | None = None) -> list[str]:
    """Create every missing partition from `since` (default: the current period) through `ahead` periods
    after the one holding `now`. Idempotent; returns the names created."""
    created: list[str] = []
    with transaction.atomic():
        own = cursor or connection.cursor()
        try:
            for table in tables or list(PARTITIONED_TABLES):
                created += _ensure_table(own, PARTITIONED_TABLES[table], now=now, since=since)
        finally:
            if cursor is None:
                own.close()
    return created


def _ensure_table(cursor: CursorWrapper, spec: PartitionedTable, *, now: dt.datetime,
                  since: dt.datetime | None) -> list[str]:
    if not is_partitioned(spec.table, cursor=cursor):
        return []
    # Serialises concurrent runs (beat overlap, a migration) on this table. Attaching waits for a lock on
    # the default partition: give up after a few seconds (the next hourly run tries again).
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{spec.table}"])
    cursor.execute("SET LOCAL lock_timeout = '5s'")
    existing = {p.start for p in partitions(spec.table, cursor=cursor) if not p.is_default}
    start = period_start(since or now, spec.period)
    last = period_start(now, spec.period)
    for _ in range(spec.ahead):
        last = next_period(last, spec.period)
    created = []
    while start <= last:
        if start not in existing:
            created.append(_create_partition(cursor, spec, start))
        start = next_period(start, spec.period)
    return created


def partition_drop(*, table: str, name: str, cursor: CursorWrapper) -> None:
    """Detach and drop one partition: a catalog change, no row deletes, no VACUUM, no WAL per row."""
    cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"')
    cursor.execute(f'DROP TABLE "{name}"')


def partition_stats(name: str, *, cursor: CursorWrapper) -> tuple[int, int]:
    """(the planner's row estimate, bytes on disk with indexes and TOAST) of one partition."""
    cursor.execute("SELECT GREATEST(reltuples, 0)::bigint, pg_total_relation_size(oid) FROM pg_class "
                   "WHERE oid = to_regclass(%s)", [name])
    row: Any = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def table_partition(cursor: CursorWrapper, *, table: str, primary_key: tuple[str, ...], now: dt.datetime,
                    keep_periods: int) -> None:
    """Turn a plain table into its partitioned form (for migrations): same columns, defaults, checks and
    identity, the primary key `primary_key` (it must hold the partition column), a default partition and
    the periods from the oldest row's (at most `keep_periods` before `now`) through `ahead` after it; rows
    are copied over (older ones land in the default partition). The caller then creates the indexes,
    constraints and foreign keys on the new table.

    A copy, so on a big production table this runs in a maintenance window (docs/storage.md says how long).
    """
    spec = PARTITIONED_TABLES[table]
    staging = f"{table}__partitioned"
    # CHECK constraints come along (Django's positive-integer checks), with their names; foreign keys do not
    # (LIKE never copies them): the caller adds those it wants back.
    cursor.execute(f'CREATE TABLE "{staging}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING IDENTITY '
                   f'INCLUDING STORAGE INCLUDING CONSTRAINTS) PARTITION BY RANGE ("{spec.column}")')
    cursor.execute(f'CREATE TABLE "{default_partition_name(table)}" PARTITION OF "{staging}" DEFAULT')
    # From the oldest row's period (at most keep_periods back: older rows land in the default partition),
    # so a fresh database starts with the current period only.
    cursor.execute(f'SELECT min("{spec.column}") FROM "{table}"')
    oldest = cursor.fetchone()[0]
    start = period_start(now, spec.period)
    for _ in range(keep_periods):
        if oldest is None or start <= oldest:
            break
        start = period_start(start - dt.timedelta(days=1), spec.period)
    end = period_start(now, spec.period)
    for _ in range(spec.ahead + 1):
        end = next_period(end, spec.period)
    while start < end:
        cursor.execute(f'CREATE TABLE "{partition_name(table, start)}" PARTITION OF "{staging}" '
                       f"FOR VALUES FROM (%s) TO (%s)",
                       [start.isoformat(), next_period(start, spec.period).isoformat()])
        start = next_period(start, spec.period)
    cursor.execute(f'INSERT INTO "{staging}" SELECT * FROM "{table}"')
    # The new identity continues after the old one's rows (is_called false: the next id is max + 1).
    cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                   f'COALESCE((SELECT max(id) FROM "{table}"), 0) + 1, false)', [staging])
    cursor.execute(f'DROP TABLE "{table}" CASCADE')
    cursor.execute(f'ALTER TABLE "{staging}" RENAME TO "{table}"')
    cursor.execute(f'ALTER SEQUENCE "{staging}_id_seq" RENAME TO "{table}_id_seq"')
    columns = ", ".join(f'"{c}"' for c in primary_key)
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY ({columns})')
