"""Publishing Celery work: the one way any app enqueues a task.

Work is published after the transaction that stored its rows commits (architecture rule 7), with
`robust=True`: a broker outage after commit is logged, not raised into a request whose rows are already
stored; the dispatcher's leases and the stale-work sweeps publish the work again. Lists of ids travel as
batches, one Celery message per chunk (architecture.md: batches, not per-item tasks).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction

from outreach.celery import app

# Ids per Celery message.
PUBLISH_CHUNK = 500


def publish(task_name: str, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
            countdown: float | None = None) -> None:
    """Send one task message now."""
    app.send_task(task_name, args=list(args), kwargs=kwargs or {}, countdown=countdown or None)


def publish_after_commit(task_name: str, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                         countdown: float | None = None) -> None:
    """Send one task message once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: publish(task_name, args=args, kwargs=kwargs, countdown=countdown), robust=True)


def publish_ids(*, task_name: str, ids: Sequence[int], chunk: int = PUBLISH_CHUNK) -> int:
    """Send `task_name` with chunks of ids, one Celery message per chunk, over one producer connection.

    Returns the number of messages sent."""
    if not ids:
        return 0
    messages = 0
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), chunk):
            app.send_task(task_name, args=[list(ids[start:start + chunk])], producer=producer)
            messages += 1
    return messages


def publish_ids_after_commit(*, task_name: str, ids: Iterable[int], chunk: int = PUBLISH_CHUNK) -> None:
    """`publish_ids` of the distinct ids, sorted, once the current transaction commits."""
    ordered = sorted(set(ids))
    if ordered:
        transaction.on_commit(lambda: publish_ids(task_name=task_name, ids=ordered, chunk=chunk), robust=True)
