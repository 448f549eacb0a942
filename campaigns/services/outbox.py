"""The outbox table contract: what campaigns writes into messaging's `outbound_messages` table.

campaigns sits below messaging, yet the outbox row must be created in the same transaction as the
transition that asks for it (architecture rule 4). So campaigns owns this contract, in raw SQL on named
columns, and imports nothing of messaging (docs/internal-interfaces/campaigns.md, "The outbox contract"):

- INSERT: one row per send, the columns of `OUTBOX_COLUMNS` (every other column must be nullable or have a
  database default), `status = 'queued'`, unique `dedupe_key` in the format of `outbox_dedupe_key`. A
  replayed send finds the row already there (ON CONFLICT on the key) and points at it.
- UPDATE of a `queued` row only: its copy (subject, bodies) when a replaced plan rewrites a message not
  yet sent, or `status = 'canceled'` with a `status_reason` when its node visit is left, its campaign ends
  or its re-armed send is refused. A row messaging has claimed (`sending` or later) is never touched.
- SELECT: a row's status, contact campaign, node and visit (delivery's reschedule hook, the lease sweeps).

campaigns/tests/test_outbox_contract.py fails when messaging's model lacks a column written here or changes
its type, or adds a NOT NULL column this INSERT would leave empty.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outreach.db import fast_cursor

OUTBOX_TABLE = "outbound_messages"
# The statuses campaigns writes (messaging's OutboundMessage.Status values of the same name).
OUTBOX_QUEUED = "queued"
OUTBOX_CANCELED = "canceled"

# (column, PostgreSQL type) of every column the INSERT writes; the order of `outbox_rows_insert`'s values.
OUTBOX_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "bigint"),
    ("contact_campaign_id", "bigint"),
    ("contact_id", "bigint"),
    ("sender_identity_id", "bigint"),
    ("channel", "varchar(16)"),
    ("node_id", "varchar(64)"),
    ("node_visit", "integer"),
    ("dedupe_key", "varchar(255)"),
    ("status", "varchar(16)"),
    ("status_reason", "varchar(300)"),
    ("delivery_status", "varchar(16)"),
    ("to_address", "varchar(254)"),
    ("subject", "varchar(300)"),
    ("body_text", "text"),
    ("body_html", "text"),
    ("in_reply_to", "varchar(255)"),
    ("references", "text"),
    ("attempts", "integer"),
    ("last_error", "text"),
    ("created_at", "timestamp with time zone"),
    ("updated_at", "timestamp with time zone"),
)
# Columns the caller gives per row; the others take the fixed values below.
_GIVEN = ("tenant_id", "contact_campaign_id", "contact_id", "sender_identity_id", "channel", "node_id",
          "node_visit", "dedupe_key", "to_address", "subject", "body_text", "body_html")
_FIXED: dict[str, Any] = {"status": OUTBOX_QUEUED, "status_reason": "", "delivery_status": "", "in_reply_to": "",
                          "references": "", "attempts": 0, "last_error": ""}
_STAMPS = ("created_at", "updated_at")
# The no-op update on conflict returns the id of a row that already existed, so a replayed send points at
# the one outbox row instead of creating a second.
_COLUMN_LIST = ", ".join(f'"{name}"' for name, _ in OUTBOX_COLUMNS)  # "references" is a keyword
_ARRAYS = ", ".join(f"%b::{kind}[]" for _, kind in OUTBOX_COLUMNS)
_INSERT_SQL = (
    f"INSERT INTO {OUTBOX_TABLE} ({_COLUMN_LIST}) SELECT * FROM unnest({_ARRAYS}) "
    "ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key RETURNING id, dedupe_key"
)


def outbox_dedupe_key(*, tenant_id: int, contact_id: int, campaign_id: int, node_id: str, channel: str,
                      node_visit: int) -> str:
    """tenant:contact:campaign:node:channel, plus the node visit: a restarted plan may enter a node again."""
    return f"{tenant_id}:{contact_id}:{campaign_id}:{node_id}:{channel}:{node_visit}"


def outbox_rows_insert(*, rows: Sequence[dict[str, Any]], now: dt.datetime) -> dict[str, int]:
    """Insert queued outbox rows (dicts with the `_GIVEN` keys) in one statement; {dedupe_key: id}."""
    if not rows:
        return {}
    params: list[list[Any]] = []
    for name, _ in OUTBOX_COLUMNS:
        if name in _STAMPS:
            params.append([now] * len(rows))
        elif name in _FIXED:
            params.append([_FIXED[name]] * len(rows))
        else:
            params.append([row[name] for row in rows])
    with fast_cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)
        return {key: pk for pk, key in cursor.fetchall()}


def outbox_copy_refresh(*, message_id: int, subject: str, body_text: str, body_html: str, now: dt.datetime) -> None:
    """A replaced plan's new copy for a message not sent yet (a claimed row keeps what it is sending)."""
    with fast_cursor() as cursor:
        cursor.execute(
            f"UPDATE {OUTBOX_TABLE} SET subject = %s, body_text = %s, body_html = %s, updated_at = %s "
            f"WHERE id = %s AND status = '{OUTBOX_QUEUED}'",
            [subject, body_text, body_html, now, message_id],
        )


def outbox_cancel_node_visits(cursor: Any, *, visits: Sequence[tuple[int, str, int]], now: dt.datetime) -> None:
    """Cancel queued messages of these (contact campaign, node, visit): never sent late (docs/engine.md)."""
    if not visits:
        return
    cc_ids, nodes, numbers = (list(x) for x in zip(*visits, strict=True))
    cursor.execute(
        f"""
        UPDATE {OUTBOX_TABLE} om SET status = '{OUTBOX_CANCELED}', status_reason = 'node left before sending',
               updated_at = %s
        FROM unnest(%b::bigint[], %b::text[], %b::int[]) AS v(cc, node, visit)
        WHERE om.contact_campaign_id = ANY(%b::bigint[])
          AND om.contact_campaign_id = v.cc AND om.node_id = v.node AND om.node_visit = v.visit
          AND om.status = '{OUTBOX_QUEUED}'
        """,
        [now, cc_ids, nodes, numbers, cc_ids],
    )


def outbox_cancel_for_stops(cursor: Any, *, stops: dict[int, str], now: dt.datetime) -> None:
    """Cancel every queued message of these ended contact campaigns ({id: stop reason})."""
    if not stops:
        return
    ids = list(stops)
    cursor.execute(
        f"""
        UPDATE {OUTBOX_TABLE} om SET status = '{OUTBOX_CANCELED}', status_reason = left(v.reason, 300),
               updated_at = %s
        FROM unnest(%b::bigint[], %b::text[]) AS v(cc, reason)
        WHERE om.contact_campaign_id = ANY(%b::bigint[]) AND om.contact_campaign_id = v.cc
          AND om.status = '{OUTBOX_QUEUED}'
        """,
        [now, ids, [f"campaign ended: {stops[i]}" for i in ids], ids],
    )


def outbox_message_cancel_queued(*, message_id: int, reason: str, now: dt.datetime) -> int:
    """Cancel one message if it is still queued; returns the rows changed (0 or 1)."""
    with fast_cursor() as cursor:
        cursor.execute(
            f"UPDATE {OUTBOX_TABLE} SET status = '{OUTBOX_CANCELED}', status_reason = %s, updated_at = %s "
            f"WHERE id = %s AND status = '{OUTBOX_QUEUED}'",
            [reason[:300], now, message_id],
        )
        return cursor.rowcount


@dataclass(frozen=True)
class OutboxMessage:
    """What campaigns reads of one outbox row."""

    id: int
    tenant_id: int
    contact_campaign_id: int | None
    node_id: str
    node_visit: int
    status: str


def outbox_message_get(*, message_id: int) -> OutboxMessage | None:
    with fast_cursor() as cursor:
        cursor.execute(
            f"SELECT id, tenant_id, contact_campaign_id, node_id, node_visit, status FROM {OUTBOX_TABLE} "
            "WHERE id = %s",
            [message_id],
        )
        row = cursor.fetchone()
    return OutboxMessage(*row) if row is not None else None


def outbox_message_status(*, message_id: int) -> str | None:
    with fast_cursor() as cursor:
        cursor.execute(f"SELECT status FROM {OUTBOX_TABLE} WHERE id = %s", [message_id])
        row = cursor.fetchone()
    return row[0] if row is not None else None
