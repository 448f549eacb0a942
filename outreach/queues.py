"""The Celery queues and task names: the deployment contract, stated once.

Settings build CELERY_TASK_QUEUES and the routes from `Queue`, and workers consume every declared queue
(`make run`, docker-compose and the demo start them without a queue list); every task is registered under
a `TaskName` and routed by its "<queue>." prefix. tests/test_celery_tasks.py checks that every registered
task is named here and routes to a declared queue, and tests/test_docs_match_the_code.py that the README
names these queues.
"""
from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    LEAD_ANALYSIS = "lead_analysis"
    CAMPAIGN_CREATION = "campaign_creation"
    CAMPAIGN_EXECUTION = "campaign_execution"
    WEBHOOKS = "webhooks"
    ANALYTICS = "analytics"
    # Calls to integrators' servers: their own queue, so a slow receiver never delays our own webhooks.
    OUTGOING_WEBHOOKS = "outgoing_webhooks"


class TaskName(StrEnum):
    ANALYSE_LEADS = f"{Queue.LEAD_ANALYSIS}.analyse_leads"
    IMPORT_CONTACTS_CSV = f"{Queue.LEAD_ANALYSIS}.import_contacts_csv"
    REQUEUE_STALE_IMPORTS = f"{Queue.LEAD_ANALYSIS}.requeue_stale_imports"
    GENERATE_PLANS = f"{Queue.CAMPAIGN_CREATION}.generate_plans"
    REQUEUE_STALE_GENERATION = f"{Queue.CAMPAIGN_CREATION}.requeue_stale_generation"
    RECOVER_GENERATION_LEASES = f"{Queue.CAMPAIGN_CREATION}.recover_generation_leases"
    DISPATCH_DUE = f"{Queue.CAMPAIGN_EXECUTION}.dispatch_due"
    RUN_ACTIONS = f"{Queue.CAMPAIGN_EXECUTION}.run_actions"
    DELIVER_MESSAGES = f"{Queue.CAMPAIGN_EXECUTION}.deliver_messages"
    RECOVER_STALE_SENDS = f"{Queue.CAMPAIGN_EXECUTION}.recover_stale_sends"
    SYNC_SENDER_IDENTITIES = f"{Queue.CAMPAIGN_EXECUTION}.sync_sender_identities"
    PROCESS_WEBHOOK_DELIVERIES = f"{Queue.WEBHOOKS}.process_deliveries"
    RETRY_WEBHOOK_DELIVERIES = f"{Queue.WEBHOOKS}.retry_deliveries"
    PING = f"{Queue.ANALYTICS}.ping"
    DELIVER_OUTGOING_WEBHOOKS = f"{Queue.OUTGOING_WEBHOOKS}.deliver"
    RETRY_OUTGOING_WEBHOOKS = f"{Queue.OUTGOING_WEBHOOKS}.retry_due"
    PRUNE_IDEMPOTENCY_RECORDS = f"{Queue.ANALYTICS}.prune_idempotency_records"
    ENSURE_PARTITIONS = f"{Queue.ANALYTICS}.ensure_partitions"
    APPLY_RETENTION = f"{Queue.ANALYTICS}.apply_retention"
    ROLLUP_PENDING = f"{Queue.ANALYTICS}.rollup_pending"
    CHECK_DELIVERABILITY = f"{Queue.ANALYTICS}.check_deliverability"


QUEUE_NAMES: tuple[str, ...] = tuple(q.value for q in Queue)


def queue_of(task_name: str) -> Queue:
    """The queue a task name routes to (its prefix)."""
    return Queue(task_name.split(".", 1)[0])
