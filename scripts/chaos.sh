#!/usr/bin/env bash
# `make chaos`: install, then run every chaos scenario on the real processes (docs/chaos.md).
# Extra arguments go to demo/run_chaos.py (e.g. --only "postgres", --short, --list).
# Environment: CHAOS_POSTGRES_PORT (5445), CHAOS_REDIS_PORT (6450), CHAOS_WEB_PORT, CHAOS_SIM_PORT (free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory install
exec .venv/bin/python -m demo.run_chaos "$@"
