"""Every Celery task the project registers is part of the deployment contract (outreach/queues.py).

Its name is a `TaskName`, it routes to a declared `Queue` (workers subscribe by queue name), and it has a
soft and a hard time limit, soft below hard: a stuck task is interrupted (and can clean up) before the
worker kills it, and never holds a worker slot for good.
"""
from __future__ import annotations

import pytest

from outreach.celery import app
from outreach.queues import QUEUE_NAMES, TaskName


def _project_tasks() -> dict:
    app.loader.import_default_modules()  # autodiscovery: every app's tasks.py / ai_tasks.py
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_the_app_registers_tasks_at_all() -> None:
    assert TaskName.PING in _project_tasks()  # the checks below are not vacuous


@pytest.mark.parametrize("name", sorted(_project_tasks()))
def test_every_registered_task_is_named_in_task_name_and_routes_to_a_declared_queue(name: str) -> None:
    assert name in set(TaskName), f"{name} is not a member of outreach.queues.TaskName"
    route = app.amqp.router.route({}, name)
    assert route["queue"].name in QUEUE_NAMES, f"{name} routes to {route['queue'].name!r}"


@pytest.mark.parametrize("name", sorted(_project_tasks()))
def test_every_registered_task_has_a_soft_and_a_hard_time_limit(name: str) -> None:
    task = app.tasks[name]
    soft, hard = task.soft_time_limit, task.time_limit
    assert soft and hard, f"{name}: soft_time_limit={soft!r}, time_limit={hard!r}; set both"
    assert soft < hard, f"{name}: soft_time_limit {soft} must be below time_limit {hard}"
