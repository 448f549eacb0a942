"""Storage upkeep on beat: time partitions created ahead, retention by dropping whole partitions."""
from __future__ import annotations

from celery import shared_task

from outreach import clock
from outreach.partitioning import partitions_ensure
from outreach.queues import TaskName
from outreach.retention import retention_run


# A catalog read, and a few CREATE TABLEs once a period.
@shared_task(name=TaskName.ENSURE_PARTITIONS, ignore_result=True, soft_time_limit=120, time_limit=180)
def ensure_partitions() -> list[str]:
    return partitions_ensure(now=clock.now())


# DROP TABLE is quick; the guards read the old partitions' rows of live enrolments (an index per partition).
@shared_task(name=TaskName.APPLY_RETENTION, ignore_result=True, soft_time_limit=1800, time_limit=2400)
def apply_retention() -> list[str]:
    return [fate.partition for fate in retention_run(now=clock.now())]
