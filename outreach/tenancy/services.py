"""Tenancy writes: tenants, API keys, switches, audit."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, Role, Tenant

API_KEY_PREFIX_LENGTH = 8


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def tenant_create(*, name: str, slug: str | None = None) -> Tenant:
    name = name.strip()
    if not name:
        raise ApplicationError("A tenant needs a name.", field="name")
    wanted = slugify(slug or name)[:70] or "tenant"
    # A second run of the same command is a mistake, not a wish for "acme-2": refuse and name the one there.
    existing = Tenant.objects.filter(Q(slug=wanted) | Q(name__iexact=name)).order_by("id").first()
    if existing is not None:
        field = "slug" if existing.slug == wanted and slug else "name"
        raise ApplicationError(f"A tenant named {existing.name!r} already exists with slug {existing.slug!r}.",
                               field=field, status_code=409, extra={"slug": existing.slug})
    return Tenant.objects.create(name=name, slug=wanted)


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def api_key_create(*, tenant: Tenant, role: str, name: str = "", created_by=None) -> IssuedApiKey:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.", field="role")
    prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
    raw_key = f"ok_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant=tenant, name=name, prefix=prefix, key_hash=hash_api_key(raw_key), role=role, created_by=created_by
        )
        audit_record(tenant=tenant, actor=created_by, action="api_key.create", target=api_key,
                     detail={"role": role, "prefix": prefix, "name": name})
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey, actor=None) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = clock.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(tenant=api_key.tenant, actor=actor, action="api_key.revoke", target=api_key)
    return api_key


# last_used_at is "roughly when": written at most once a minute per key, so a busy key costs no write per call.
API_KEY_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record that the key authenticated, unless it was recorded less than a minute ago.

    The loaded row already says when it was last recorded, so a fresh stamp costs no query at all; a stale
    one costs one conditional UPDATE, whose WHERE keeps concurrent processes from all writing it.
    """
    now = clock.now()
    cutoff = now - API_KEY_LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > cutoff:
        return
    ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff), pk=api_key.pk).update(
        last_used_at=now)
    api_key.last_used_at = now


def audit_record(*, action: str, tenant: Tenant | None = None, actor=None, actor_label: str = "",
                 target=None, detail: dict | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        tenant=tenant,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        detail=detail or {},
    )


def tenant_set_sending_paused(*, tenant: Tenant, paused: bool, actor=None, reason: str = "") -> Tenant:
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(sending_paused=paused)
        tenant.sending_paused = paused
        audit_record(tenant=tenant, actor=actor, action="tenant.pause" if paused else "tenant.resume",
                     target=tenant, detail={"reason": reason})
    return tenant


def global_sending_set_stopped(*, stopped: bool, actor=None, reason: str = "") -> GlobalSendingSwitch:
    with transaction.atomic():
        switch, _ = GlobalSendingSwitch.objects.select_for_update().get_or_create(id=1)
        switch.sending_stopped = stopped
        switch.reason = reason
        switch.updated_by = actor if getattr(actor, "pk", None) else None
        switch.save()
        audit_record(actor=actor, action="global.stop" if stopped else "global.resume", target=switch,
                     detail={"reason": reason})
    return switch
