"""Celery through the real Redis broker: a real worker process consumes a published task."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from outreach.celery import app
from outreach.tasks import ping_answer
from outreach.testing import child_process_env

ROOT = Path(__file__).resolve().parent.parent


def test_every_task_name_prefix_routes_to_its_queue():
    router = app.amqp.router
    for queue in settings.CELERY_QUEUE_NAMES:
        assert router.route({}, f"{queue}.anything")["queue"].name == queue
    assert router.route({}, "analytics.ping")["queue"].name == "analytics"


def test_the_diagnostic_ping_task_is_registered_with_a_json_only_app():
    app.loader.import_default_modules()
    assert "analytics.ping" in app.tasks
    assert app.tasks["analytics.ping"].ignore_result
    assert app.conf.accept_content == ["json"]


@pytest.mark.slow
def test_a_task_round_trips_through_redis_to_a_real_worker_process():
    token = uuid.uuid4().hex
    # A queue of its own: a worker of another test (or a developer's) never takes this ping,
    # and this worker never takes theirs.
    queue = f"diagnostics-{token}"
    env = child_process_env()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "outreach", "worker", "-Q", queue, "-P", "solo", "-c", "1",
         "-n", f"ping-{token}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        app.send_task("analytics.ping", args=[token], queue=queue)
        deadline = time.monotonic() + 60
        answer = ping_answer(token)
        while answer is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
            answer = ping_answer(token)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()

    assert answer is not None, f"the worker never ran the ping; its output:\n{output}"
    assert answer["queue"] == queue
    assert answer["worker"].startswith(f"ping-{token}@")
    assert worker.returncode in (0, -signal.SIGTERM), output
