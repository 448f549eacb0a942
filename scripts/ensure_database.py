"""Create the database named by DATABASE_URL if it does not exist yet (first run on a fresh machine)."""
import os
import sys

import django
import psycopg
from psycopg import sql

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.base")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
django.setup()

from django.conf import settings  # noqa: E402

db = settings.DATABASES["default"]
params = {"host": db.get("HOST") or None, "port": db.get("PORT") or None, "user": db.get("USER") or None,
          "password": db.get("PASSWORD") or None, "dbname": "postgres", "autocommit": True}
try:
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"created database {db['NAME']}")
except psycopg.OperationalError as exc:
    sys.exit(f"cannot reach PostgreSQL for DATABASE_URL: {exc}")
