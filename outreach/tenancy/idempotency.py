"""`Idempotency-Key` on POSTs, in the style of Stripe: a retry after a timeout never does the work twice.

`claim` inserts the (tenant, key) row before the view runs, in autocommit, so a concurrent duplicate finds
it and is refused (409, still running) instead of running too. The view's answer (2xx or 4xx) is stored by
`record`; a 5xx or a crash `release`s the claim so the client may retry with the same key.
Same key + same request (method, path, body) replays the first answer; same key + another request is a 409.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.utils.encoders import JSONEncoder

from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.models import IdempotencyRecord, Tenant

HEADER = "Idempotency-Key"
TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
PRUNE_BATCH = 5000


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def fingerprint(*, method: str, path: str, data: Any) -> str:
    """SHA-256 over the method, the path and the parsed body (JSON canonicalised; uploaded files hashed)."""
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    if hasattr(data, "lists"):  # a QueryDict (form or multipart): fields as lists, files by content
        plain = {key: [v for v in values if not hasattr(v, "chunks")] for key, values in data.lists()}
        digest.update(json.dumps(plain, sort_keys=True, default=str).encode())
        uploads = [(key, v) for key, values in data.lists() for v in values if hasattr(v, "chunks")]
        for name, upload in sorted(uploads, key=lambda pair: pair[0]):
            digest.update(name.encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def claim(*, tenant: Tenant, key: str, method: str, path: str, fingerprint_hex: str) -> IdempotencyRecord | Replay:
    """Our claim on the key (run the request), or the stored answer to replay; a 409 when refused."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApplicationError(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.", field=HEADER)
    now = clock.now()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(tenant=tenant, key=key, fingerprint=fingerprint_hex,
                                                        method=method, path=path[:500], expires_at=now + TTL)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(tenant=tenant, key=key).first()
        if existing is None:
            continue  # released or pruned in between: claim again
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        return _answer_for(existing, key=key, fingerprint_hex=fingerprint_hex)
    raise ApplicationError(f"{HEADER} {key!r} is in use by a concurrent request; retry.", field=HEADER,
                           status_code=409, code="idempotency_key_in_use")


def _answer_for(existing: IdempotencyRecord, *, key: str, fingerprint_hex: str) -> Replay:
    if existing.fingerprint != fingerprint_hex:
        raise ApplicationError(
            f"{HEADER} {key!r} was already used for a different request ({existing.method} {existing.path} "
            "with another body); use a new key for a new request.",
            field=HEADER, status_code=409, code="idempotency_key_reused", extra={"idempotency_key": key})
    if existing.status_code is None:
        raise ApplicationError(f"A request with {HEADER} {key!r} is still being processed; retry later.",
                               field=HEADER, status_code=409, code="idempotency_key_in_use",
                               extra={"idempotency_key": key})
    return Replay(status_code=existing.status_code, body=existing.response_body)


def record(*, claimed: IdempotencyRecord, status_code: int, body: Any) -> None:
    """Store the first answer (2xx/4xx), or release the key after a 5xx so a retry can run."""
    if status_code >= 500:
        release(claimed=claimed)
        return
    stored = json.loads(json.dumps(body, cls=JSONEncoder))  # dates, decimals, UUIDs as the client saw them
    IdempotencyRecord.objects.filter(pk=claimed.pk).update(status_code=status_code, response_body=stored)


def release(*, claimed: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=claimed.pk, status_code__isnull=True).delete()


def prune_expired(*, now: dt.datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete expired records in batches; returns how many went."""
    now = now or clock.now()
    removed = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("id", flat=True)[:batch])
        if not ids:
            return removed
        removed += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
