"""What messaging's partitioned tables still need before retention may drop a partition, and the pruning
of the raw-POST hash table (docs/storage.md, "Retention"). Connected in MessagingConfig.ready()."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper

from outreach.partitioning import Partition
from outreach.retention import retention_guards, retention_sweeps

# Deliveries a worker has not processed yet: their events exist nowhere else.
_UNPROCESSED_SQL = "SELECT count(*) FROM {partition} WHERE status IN ('pending', 'failed')"
# Events of a message whose enrolment still waits on a timer (pending, held or claimed): the engine may
# still read them (a click is judged against its delivery, a timer against what was heard).
_LIVE_EVENTS_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM {partition} me
    JOIN outbound_messages om ON om.id = me.outbound_message_id
    WHERE EXISTS (SELECT 1 FROM scheduled_actions sa WHERE sa.contact_campaign_id = om.contact_campaign_id
                  AND sa.status IN ('pending', 'held', 'claimed'))
    LIMIT 1000
) live
"""


def _count(cursor: CursorWrapper, sql: str, partition: Partition) -> int:
    cursor.execute(sql.format(partition=f'"{partition.name}"'))
    return int(cursor.fetchone()[0])


def unprocessed_deliveries_guard(table: str, partition: Partition, cursor: CursorWrapper) -> str | None:
    if table != "webhook_deliveries":
        return None
    waiting = _count(cursor, _UNPROCESSED_SQL, partition)
    return f"{waiting} deliveries not processed yet" if waiting else None


def live_enrolment_events_guard(table: str, partition: Partition, cursor: CursorWrapper) -> str | None:
    if table != "message_events":
        return None
    live = _count(cursor, _LIVE_EVENTS_SQL, partition)
    return f"{live}{'+' if live >= 1000 else ''} events of enrolments with a pending timer" if live else None


def payload_hashes_prune(*, now: dt.datetime) -> int:
    """Forget raw-POST hashes older than WEBHOOK_DEDUPE_DAYS (one row per POST: a small table)."""
    cutoff = now - dt.timedelta(days=settings.WEBHOOK_DEDUPE_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM webhook_payload_hashes WHERE received_at < %s", [cutoff])
        return cursor.rowcount


def connect_storage_rules() -> None:
    retention_guards.connect(unprocessed_deliveries_guard)
    retention_guards.connect(live_enrolment_events_guard)
    retention_sweeps.connect(payload_hashes_prune)
