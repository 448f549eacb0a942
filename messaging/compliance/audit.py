"""Audited deletes: resubscribing an address and lifting a suppression keep who, when, why and the removed row."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from messaging.models import CommunicationSuppression, ContactUnsubscribe
from outreach.errors import ApplicationError, NotFoundError
from outreach.tenancy.models import Tenant
from outreach.tenancy.services import audit_record


def row_snapshot(row: ContactUnsubscribe | CommunicationSuppression) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in row._meta.concrete_fields:
        value = getattr(row, f.attname)
        data[f.attname] = value.isoformat() if isinstance(value, dt.datetime) else value
    return data


def actor_fields(actor: Any, actor_label: str) -> dict[str, Any]:
    """audit_record's actor arguments: a user when `actor` is one, else only a label (API key, command)."""
    user = actor if getattr(actor, "pk", None) else None
    return {"actor": user, "actor_label": actor_label or (str(actor) if actor is not None else "")}


def delete_audited(queryset: QuerySet, *, tenant: Tenant, action: str, reason: str, actor: Any, actor_label: str,
                   reason_needed: str, missing: str):
    """Delete the one row `queryset` names, with an audit entry holding who, why and the removed row."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(reason_needed, field="reason")
    with transaction.atomic():
        row = queryset.select_for_update().first()
        if row is None:
            raise NotFoundError(missing)
        audit_record(tenant=tenant, action=action, target=row,
                     detail={"reason": reason, "removed": row_snapshot(row)}, **actor_fields(actor, actor_label))
        row.delete()
    return row
