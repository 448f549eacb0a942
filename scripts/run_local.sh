#!/usr/bin/env bash
# `make run`: the web server, a Celery worker on every queue and Celery beat, in the foreground,
# against the local PostgreSQL and Redis (the Makefile has started them and migrated already).
# Ctrl-C (SIGINT) or SIGTERM stops all three; if one of them dies, the others are stopped too.
#
# RUN_WEB_ADDR (default 127.0.0.1:8000), WEB_CONCURRENCY / WEB_THREADS (gunicorn, default 2 x 8) and
# WORKER_CONCURRENCY (default 2) adjust it.
set -uo pipefail
cd "$(dirname "$0")/.."

# A developer's machine: unset secrets are generated once per checkout (outreach/settings/local_secrets.py).
export OUTREACH_LOCAL_MODE=${OUTREACH_LOCAL_MODE:-1}

PY=.venv/bin/python
CELERY=.venv/bin/celery
WEB_ADDR=${RUN_WEB_ADDR:-127.0.0.1:8000}

pids=()

stop() {
  local status=$1
  # A second Ctrl-C while the worker finishes its running tasks: stop at once.
  trap 'echo "killing" >&2; kill -KILL "${pids[@]}" 2>/dev/null' INT TERM
  echo "stopping web, worker and beat..." >&2
  kill -TERM "${pids[@]}" 2>/dev/null
  wait
  exit "$status"
}
trap 'stop 130' INT
trap 'stop 143' TERM

# gunicorn as deployed (gunicorn.conf.py: threaded workers, so idle or slow clients cannot block it);
# WhiteNoise serves the admin's static files.
"$PY" -m gunicorn --config gunicorn.conf.py --bind "$WEB_ADDR" --access-logfile - &
pids+=($!)
# No --queues: the worker consumes every queue of CELERY_TASK_QUEUES (outreach.queues.Queue).
"$CELERY" -A outreach worker --loglevel INFO --concurrency "${WORKER_CONCURRENCY:-2}" &
pids+=($!)
"$CELERY" -A outreach beat --loglevel INFO &
pids+=($!)

echo "web: http://$WEB_ADDR/admin/   (Ctrl-C stops web, worker and beat)" >&2
wait -n
status=$?
echo "a process exited with status $status; stopping the others" >&2
stop "$status"
