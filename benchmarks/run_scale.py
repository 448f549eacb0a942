"""`make bench-scale`: benchmarks/scale.py on its own database (BENCH_DATABASE_URL, as run_all states)."""
from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.base")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_SCALE_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/outreach_bench_scale")
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.pop("CELERY_BROKER_URL", None)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "scripts/ensure_database.py"], cwd=root, check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, check=True)
    import django

    django.setup()
    from benchmarks import scale

    scale.main()


if __name__ == "__main__":
    main()
