"""Fast SQL for the hot paths: server-side-bound cursors and multi-row inserts through unnest.

Django's connections bind parameters client-side, which quotes every array element in Python; the hot
paths send arrays of thousands of values, which psycopg dumps natively with server-side binding. The
cursor is wrapped like Django's own, so query logging and `django_assert_num_queries` see it.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import JSONField, Model


def fast_cursor() -> Any:
    """A cursor with server-side parameter binding, counted and logged like Django's own."""
    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


_INSERT_PLANS: dict[type[Model], tuple[list[Any], str]] = {}


def _insert_plan(model: type[Model]) -> tuple[list[Any], str]:
    """The columns of a model and the INSERT ... SELECT FROM unnest(...) that writes them (built once)."""
    cached = _INSERT_PLANS.get(model)
    if cached is not None:
        return cached
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names, casts, selects = [], [], []
    for i, f in enumerate(fields):
        names.append(connection.ops.quote_name(f.column))
        if isinstance(f, JSONField):
            casts.append("%b::text[]")  # JSON travels as text and is cast per row
            selects.append(f"c{i}::jsonb")
        else:
            casts.append(f"%b::{f.db_type(connection)}[]")
            selects.append(f"c{i}")
    aliases = ", ".join(f"c{i}" for i in range(len(fields)))
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) SELECT {', '.join(selects)} "
           f"FROM unnest({', '.join(casts)}) AS v({aliases})")
    _INSERT_PLANS[model] = (fields, sql)
    return fields, sql


def insert_rows(model: type[Model], rows: list[dict[str, Any]], *, now: dt.datetime, suffix: str = ""
                ) -> list[tuple[Any, ...]]:
    """Insert many rows in one statement; `rows` map attnames to values, other fields take their defaults.

    Built from the model's fields, so a column added later (with a default) needs no change here.
    `suffix` is appended to the statement (ON CONFLICT ..., RETURNING ...).
    """
    if not rows:
        return []
    fields, sql = _insert_plan(model)
    params: list[list[Any]] = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            column = [now] * len(rows)
        else:
            default = f.get_default() if f.has_default() or not f.null else None
            column = [r.get(f.attname, default) for r in rows]
        if isinstance(f, JSONField):
            column = [None if v is None else json.dumps(v, cls=f.encoder) for v in column]
        params.append(column)
    with fast_cursor() as cursor:
        cursor.execute(f"{sql} {suffix}", params)
        return cursor.fetchall() if "RETURNING" in suffix else []
