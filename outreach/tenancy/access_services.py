"""Who may act for a tenant: issuing and revoking API keys, adding and removing members.

The rule throughout: nobody grants more than they hold (an admin cannot mint an owner key), and a
tenant always keeps at least one owner. Every change leaves an audit entry.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from outreach.errors import ApplicationError
from outreach.tenancy.models import ApiKey, Role, Tenant, TenantMembership, role_at_least
from outreach.tenancy.services import IssuedApiKey, api_key_create, api_key_revoke, audit_record


def _check_role(role: str, *, field: str = "role") -> None:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.", field=field)


def _check_ceiling(*, actor_role: str, role: str, field: str = "role") -> None:
    if not role_at_least(actor_role, role):
        raise ApplicationError(f"You cannot grant or change the {role} role: you have {actor_role}.", field=field,
                               status_code=403)


def api_key_issue(*, tenant: Tenant, role: str, name: str = "", actor_role: str, actor=None) -> IssuedApiKey:
    """A new key; the raw secret is in the result only (never stored, never shown again)."""
    _check_role(role)
    _check_ceiling(actor_role=actor_role, role=role)
    # api_key_create records the audit entry.
    return api_key_create(tenant=tenant, role=role, name=name,
                          created_by=actor if getattr(actor, "pk", None) else None)


def api_key_revoke_checked(*, api_key: ApiKey, actor_role: str, actor=None) -> ApiKey:
    """Revoke a key, unless it holds a higher role than the caller (an admin cannot cut off an owner)."""
    _check_ceiling(actor_role=actor_role, role=api_key.role)
    return api_key_revoke(api_key=api_key, actor=actor)


def _owner_count(tenant_id: int) -> int:
    return TenantMembership.objects.filter(tenant_id=tenant_id, role=Role.OWNER).count()


def membership_add(*, tenant: Tenant, user_identifier: str, role: str, actor_role: str, actor=None,
                   actor_label: str = "") -> TenantMembership:
    """Add an existing user (by username or email) to the tenant with a role."""
    _check_role(role)
    _check_ceiling(actor_role=actor_role, role=role)
    identifier = (user_identifier or "").strip()
    user_model = get_user_model()
    users = list(user_model.objects.filter(Q(username=identifier) | Q(email__iexact=identifier))[:2]) \
        if identifier else []
    if len(users) != 1:
        raise ApplicationError("No single user with this username or email.", field="user")
    with transaction.atomic():
        membership, created = TenantMembership.objects.get_or_create(tenant=tenant, user=users[0],
                                                                     defaults={"role": role})
        if not created:
            raise ApplicationError("This user is already a member.", field="user", status_code=409)
        audit_record(tenant=tenant, actor=actor, actor_label=actor_label, action="membership.add",
                     target=membership, detail={"user": users[0].get_username(), "role": role})
    return membership


def membership_set_role(*, membership: TenantMembership, role: str, actor_role: str, actor=None,
                        actor_label: str = "") -> TenantMembership:
    _check_role(role)
    _check_ceiling(actor_role=actor_role, role=role)
    _check_ceiling(actor_role=actor_role, role=membership.role)
    with transaction.atomic():
        locked = TenantMembership.objects.select_for_update().get(pk=membership.pk)
        if locked.role == role:
            return locked
        # Lock the tenant's owner rows so two concurrent demotions cannot both pass the check.
        list(TenantMembership.objects.select_for_update().filter(tenant_id=locked.tenant_id, role=Role.OWNER))
        if locked.role == Role.OWNER and _owner_count(locked.tenant_id) <= 1:
            raise ApplicationError("A tenant keeps at least one owner.", field="role", status_code=409)
        previous = locked.role
        locked.role = role
        locked.save(update_fields=["role"])
        audit_record(tenant=locked.tenant, actor=actor, actor_label=actor_label, action="membership.role",
                     target=locked, detail={"from": previous, "to": role})
    return locked


def membership_remove(*, membership: TenantMembership, actor_role: str, actor=None, actor_label: str = "") -> None:
    _check_ceiling(actor_role=actor_role, role=membership.role)
    with transaction.atomic():
        locked = TenantMembership.objects.select_for_update().get(pk=membership.pk)
        list(TenantMembership.objects.select_for_update().filter(tenant_id=locked.tenant_id, role=Role.OWNER))
        if locked.role == Role.OWNER and _owner_count(locked.tenant_id) <= 1:
            raise ApplicationError("A tenant keeps at least one owner.", status_code=409)
        audit_record(tenant=locked.tenant, actor=actor, actor_label=actor_label, action="membership.remove",
                     target=locked, detail={"user_id": locked.user_id, "role": locked.role})
        locked.delete()

