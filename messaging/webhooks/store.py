"""Raw storage and deduplication: the POSTed body once, each event once.

Duplicates are normal (providers.md): the same POST can arrive twice (its hash in webhook_payload_hashes),
and the same event can arrive many times, sometimes with a new ``sg_event_id``. Two unique keys of
message_events catch both: ``(provider, provider_event_id)`` and the content ``dedupe_key`` (message,
recipient, event, timestamp, url/reason), each with ``occurred_at``, the partition key, which the event's
own timestamp fixes (docs/storage.md). The bulk statements bind server-side with binary parameters (``%b``) through
`outreach.db.fast_cursor`: every element of a 1,000-item array parameter, and every byte of a 400 KB body,
would otherwise be quoted into the SQL text in Python.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import orjson

from messaging.webhooks.events import NormalisedEvent
from outreach import clock
from outreach.db import fast_cursor
from outreach.publishing import publish_after_commit
from outreach.queues import TaskName

INSERT_CHUNK = 5000


def webhook_delivery_store(
    *, kind: str, body: bytes, headers: dict, signature_valid: bool | None, event_count: int,
    payload_hash: str | None = None,
) -> int | None:
    """Store a raw POST once (its hash new in webhook_payload_hashes). Returns its id, or None for a
    byte-identical repeat.

    ``payload_hash`` is that of the POST as received when what is stored is a capped copy of it.
    Processing is enqueued after commit, so a worker never sees a row that was rolled back; if the broker
    is down the row is stored all the same and the retry sweep (webhooks.retry_deliveries) picks it up.
    """
    payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
    now = clock.now()
    with fast_cursor() as cursor:
        # webhook_deliveries is partitioned by time, so the repeat is caught in webhook_payload_hashes
        # (kept WEBHOOK_DEDUPE_DAYS): the delivery row is inserted only when its hash is new.
        cursor.execute(
            "WITH new_hash AS (INSERT INTO webhook_payload_hashes (payload_hash, received_at) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING RETURNING payload_hash) "
            "INSERT INTO webhook_deliveries (kind, body, headers, payload_hash, signature_valid, status, "
            "event_count, error, attempts, received_at, rejected_events) SELECT %s::text, %b, %s::jsonb, payload_hash, "
            "%s::bool, 'pending', %s::int, '', 0, %s::timestamptz, '[]'::jsonb FROM new_hash RETURNING id",
            [payload_hash, now, kind, body, orjson.dumps(headers).decode(), signature_valid, event_count, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    delivery_id = int(row[0])
    publish_after_commit(TaskName.PROCESS_WEBHOOK_DELIVERIES, args=[[delivery_id]])
    return delivery_id


def events_unique(events: list[NormalisedEvent]) -> list[NormalisedEvent]:
    """The batch without its own repeats (same content key or same provider event id), first one kept."""
    seen_keys: set[str] = set()
    seen_ids: set[str] = set()
    unique: list[NormalisedEvent] = []
    for event in events:
        if event.dedupe_key in seen_keys or (event.provider_event_id and event.provider_event_id in seen_ids):
            continue
        seen_keys.add(event.dedupe_key)
        if event.provider_event_id:
            seen_ids.add(event.provider_event_id)
        unique.append(event)
    return unique


_INSERT_EVENTS_SQL = """
INSERT INTO message_events (tenant_id, outbound_message_id, webhook_delivery_id, provider, event_type,
    provider_event_id, dedupe_key, email, url, is_machine, bounce_type, reason, occurred_at, raw, created_at)
SELECT t, m, w, 'sendgrid', et, pe, dk, em, u, im, bt, rs, oa, r::jsonb, %b
FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[],
            %b::text[], %b::bool[], %b::text[], %b::text[], %b::timestamptz[], %b::text[])
     AS x(t, m, w, et, pe, dk, em, u, im, bt, rs, oa, r)
ON CONFLICT DO NOTHING
RETURNING dedupe_key
"""


def _insert_params(now: dt.datetime, chunk: list[NormalisedEvent]) -> list[Any]:
    return [
        now,
        [e.tenant_id for e in chunk],
        [e.message["id"] if e.message else None for e in chunk],
        [e.delivery_id for e in chunk],
        [e.event_type for e in chunk],
        [e.provider_event_id for e in chunk],
        [e.dedupe_key for e in chunk],
        [e.email for e in chunk],
        [e.url for e in chunk],
        [e.is_machine for e in chunk],
        [e.bounce_type for e in chunk],
        [e.reason for e in chunk],
        [e.occurred_at for e in chunk],
        [e.raw_json for e in chunk],
    ]


def events_insert(events: list[NormalisedEvent]) -> set[str]:
    """Deduplicating bulk insert; returns the dedupe keys of the rows that were new."""
    new_keys: set[str] = set()
    now = clock.now()
    with fast_cursor() as cursor:
        for start in range(0, len(events), INSERT_CHUNK):
            cursor.execute(_INSERT_EVENTS_SQL, _insert_params(now, events[start:start + INSERT_CHUNK]))
            new_keys.update(row[0] for row in cursor.fetchall())
    return new_keys
