"""`make bench`: run every benchmarks/bench_*.py module's `main()` and print its figures (engine, rate limits,
webhooks, replies: bench_replies is the reply-classification time per KB, issue 11).

Benchmarks print numbers; they never pass or fail on speed. They run against their own database and Redis
database (BENCH_DATABASE_URL and BENCH_REDIS_URL below, the one place these are stated) so they can load
millions of rows without touching dev data.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.base")
os.environ.setdefault("OUTREACH_LOCAL_MODE", "1")  # a developer's machine: generated secrets
# Set outright, never taken from DATABASE_URL / REDIS_URL: the benchmarks delete rows and empty broker queues,
# which must never happen to a developer's data. BENCH_DATABASE_URL / BENCH_REDIS_URL choose others.
BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/outreach_bench")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
os.environ["REDIS_URL"] = BENCH_REDIS_URL
os.environ.pop("CELERY_BROKER_URL", None)  # the broker follows REDIS_URL


def main() -> None:
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "scripts/ensure_database.py"], cwd=root, check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, check=True)
    import django

    django.setup()
    only = set(sys.argv[1:])
    import benchmarks

    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (only and info.name not in only):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        print(f"\n== {info.name} ==", flush=True)
        started = time.perf_counter()
        module.main()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
