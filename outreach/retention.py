"""Retention by dropping whole time partitions (docs/storage.md, "Retention").

Each partitioned table keeps `settings.RETENTION_DAYS[table]` days (raw webhook bodies 30, events 13
months, transitions 25 months by default). A partition goes once its whole range is older than that; its
rows are never deleted one by one (a DROP is a catalog change: no WAL per row, no VACUUM, and the disk
space comes back at once). Before a partition goes, every guard the owning apps connected to
`retention_guards` is asked; one that names a reason keeps it (the engine still needs a row of it), and
the plan says so. The default partition is never dropped (it holds what fell outside every range).

Opt-outs and suppressions are in no partitioned table and nothing here touches them.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper

from outreach.extensions import Listeners
from outreach.partitioning import (
    PARTITIONED_TABLES,
    Partition,
    partition_drop,
    partition_stats,
    partitions,
    partitions_ensure,
)

logger = logging.getLogger(__name__)

# (table, partition, cursor) -> a reason to keep the partition, or None. Connected by the apps that own
# the tables (their AppConfig.ready()), because only they know what the engine still reads.
RetentionGuard = Callable[[str, Partition, CursorWrapper], "str | None"]
retention_guards: Listeners[RetentionGuard] = Listeners("retention_guards")
# (now=...) -> None: small side tables pruned by time with the daily run (messaging's raw-POST hashes).
retention_sweeps: Listeners[Callable[..., None]] = Listeners("retention_sweeps")

KEEP = "keep"
DROP = "drop"
HELD = "held"


@dataclass(frozen=True)
class PartitionFate:
    table: str
    partition: str
    start: dt.datetime | None
    end: dt.datetime | None
    rows: int  # the planner's estimate
    bytes: int
    fate: str  # KEEP, DROP (goes on the next run) or HELD (old enough, but a guard keeps it)
    reason: str = ""

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def retention_cutoff(table: str, *, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=settings.RETENTION_DAYS[table])


def _fate(table: str, part: Partition, cutoff: dt.datetime, cursor: CursorWrapper) -> tuple[str, str]:
    if part.is_default:
        return KEEP, "default partition (rows outside every range)"
    assert part.end is not None
    if part.end > cutoff:
        return KEEP, f"newer than the retention cutoff {cutoff:%Y-%m-%d}"
    reasons = [reason for reason in retention_guards.send(table, part, cursor) if reason]
    if reasons:
        return HELD, "; ".join(reasons)
    return DROP, f"ends {part.end:%Y-%m-%d}, before the cutoff {cutoff:%Y-%m-%d}"


def retention_plan(*, now: dt.datetime, cursor: CursorWrapper | None = None) -> list[PartitionFate]:
    """Every partition of every partitioned table, with what the next retention run does with it."""
    own = cursor or connection.cursor()
    try:
        fates: list[PartitionFate] = []
        for table in PARTITIONED_TABLES:
            cutoff = retention_cutoff(table, now=now)
            for part in partitions(table, cursor=own):
                fate, reason = _fate(table, part, cutoff, own)
                rows, size = partition_stats(part.name, cursor=own)
                fates.append(PartitionFate(table, part.name, part.start, part.end, rows, size, fate, reason))
        return fates
    finally:
        if cursor is None:
            own.close()


def retention_apply(*, now: dt.datetime) -> list[PartitionFate]:
    """Drop the partitions the plan marks DROP (each after its guards are asked again, in the same
    transaction, under a lock that keeps writers of that partition out). Returns what was dropped."""
    dropped: list[PartitionFate] = []
    for fate in retention_plan(now=now):
        if fate.fate != DROP:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # DETACH locks the parent: never queue behind a long query (and every insert behind us).
                cursor.execute("SET LOCAL lock_timeout = '5s'")
                cursor.execute(f'LOCK TABLE "{fate.partition}" IN ACCESS EXCLUSIVE MODE')
                part = Partition(fate.partition, fate.start, fate.end)
                if any(retention_guards.send(fate.table, part, cursor)):
                    continue
                partition_drop(table=fate.table, name=fate.partition, cursor=cursor)
        except OperationalError:
            logger.warning("retention could not lock %s in time; the next run tries again", fate.partition)
            continue
        logger.info("retention dropped %s (%s rows, %s bytes)", fate.partition, fate.rows, fate.bytes)
        dropped.append(fate)
    return dropped


def retention_run(*, now: dt.datetime) -> list[PartitionFate]:
    """The daily upkeep (beat's task and `storage_retention --apply`): partitions ahead first, so a run after
    a long outage still finds the current period's; then the drops that are due; then the apps' sweeps."""
    partitions_ensure(now=now)
    dropped = retention_apply(now=now)
    retention_sweeps.send(now=now)
    return dropped
