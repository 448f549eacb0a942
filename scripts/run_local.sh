#!/usr/bin/env bash
# `make run`: the web server, a Celery worker on every queue and Celery beat, in the foreground,
# against the local PostgreSQL and Redis (the Makefile has started them and migrated already).
# Ctrl-C (SIGINT) or SIGTERM stops all three.
#
# Supervised as production runs them (README "Recovery after a fault"): a process that exits is started
# again after 1 s, the wait doubling to 30 s while it keeps exiting within a minute. (The Celery worker
# exits on a second Redis loss with kombu's "'NoneType' object has no attribute 'hostname'"; no release
# fixes it yet, so it is restarted.)
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

# supervise NAME COMMAND...: run COMMAND, start it again whenever it exits, until this script is stopped.
supervise() {
  local name=$1
  shift
  (
    child=0
    trap '[ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM
    trap '' INT  # Ctrl-C reaches the child itself (same process group); the script then sends TERM
    delay=1
    while true; do
      "$@" &
      child=$!
      started=$SECONDS
      wait "$child"
      status=$?
      if (( SECONDS - started >= 60 )); then delay=1; fi
      echo "$name exited with status $status; restarting it in ${delay}s" >&2
      sleep "$delay" &
      wait $!
      (( delay = delay * 2 > 30 ? 30 : delay * 2 ))
    done
  ) &
  pids+=($!)
}

stop() {
  local status=$1
  # A second Ctrl-C while the worker finishes its running tasks: stop at once.
  trap 'echo "killing" >&2; pkill -KILL -P "$(IFS=,; echo "${pids[*]}")" 2>/dev/null; kill -KILL "${pids[@]}" 2>/dev/null' INT TERM
  echo "stopping web, worker and beat..." >&2
  kill -TERM "${pids[@]}" 2>/dev/null
  wait
  exit "$status"
}
trap 'stop 130' INT
trap 'stop 143' TERM

# gunicorn as deployed (gunicorn.conf.py: threaded workers, so idle or slow clients cannot block it);
# WhiteNoise serves the admin's static files.
supervise web "$PY" -m gunicorn --config gunicorn.conf.py --bind "$WEB_ADDR" --access-logfile -
# No --queues: the worker consumes every queue of CELERY_TASK_QUEUES (outreach.queues.Queue).
supervise worker "$CELERY" -A outreach worker --loglevel INFO --concurrency "${WORKER_CONCURRENCY:-2}"
supervise beat "$CELERY" -A outreach beat --loglevel INFO

echo "web: http://$WEB_ADDR/admin/   (Ctrl-C stops web, worker and beat; an exited one is restarted)" >&2
wait
