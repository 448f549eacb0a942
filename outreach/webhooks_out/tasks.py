"""Celery side of outgoing webhooks: deliver after commit, and a beat sweep for retries that fell due."""
from __future__ import annotations

from celery import shared_task

from outreach.publishing import publish_ids
from outreach.queues import TaskName
from outreach.webhooks_out import services


# A chunk of up to 500 deliveries at 5 s each is the worst case; receivers are usually fast.
@shared_task(name=TaskName.DELIVER_OUTGOING_WEBHOOKS, ignore_result=True, soft_time_limit=240, time_limit=300)
def deliver_outgoing_webhooks(delivery_ids: list[int]) -> int:
    return services.deliver(delivery_ids=delivery_ids)


@shared_task(name=TaskName.RETRY_OUTGOING_WEBHOOKS, ignore_result=True, soft_time_limit=30, time_limit=60)
def retry_outgoing_webhooks() -> int:
    return publish_ids(task_name=TaskName.DELIVER_OUTGOING_WEBHOOKS, ids=services.due_delivery_ids(), chunk=20)
