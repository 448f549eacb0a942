#!/usr/bin/env bash
# `make demo` / `make demo-keep`: install, then run the whole system once on a fast clock (docs/demo.md).
# Extra arguments go to demo/run_demo.py (e.g. --keep, --speed 3600, --timeout 600).
# Environment: DEMO_DATABASE_URL (DROPPED and recreated each run), DEMO_REDIS_URL (flushed each run),
# DEMO_WEB_PORT, DEMO_SIM_PORT, DEMO_FLOWER_PORT, DEMO_CLOCK_SPEED: defaults in docs/demo.md and
# `python -m demo.run_demo --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null 2>&1 && [ ! -x .venv/bin/python ]; then
  echo "cannot run the demo: python3 is not installed (Python 3.11+ is needed)" >&2
  exit 2
fi
make --no-print-directory install
# The demo is a local mode (outreach/settings/local_secrets.py); its processes get fresh secrets per run.
export OUTREACH_LOCAL_MODE=1

# On the default local addresses, start PostgreSQL / Redis if they are installed but not running.
# Whatever is still missing afterwards is reported precisely by the preflight in demo/run_demo.py.
if [ -z "${DEMO_DATABASE_URL:-}" ] && [ -z "${DEMO_REDIS_URL:-}" ]; then
  bash scripts/ensure_services.sh >/dev/null 2>&1 || true
fi

exec .venv/bin/python -m demo.run_demo "$@"
