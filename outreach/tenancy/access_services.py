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


# One answer for every refusal, so that a tenant cannot learn whether an address is a user of another tenant.
MEMBER_ADD_REFUSED = ("No user with this email can be added to this tenant; they must sign up first or be added "
                      "by an operator.")


def membership_add_by_email(*, tenant: Tenant, email: str, role: str, actor_role: str, actor=None,
                            actor_label: str = "") -> TenantMembership:
    """An owner adds a user to their tenant by email (the API's path).

    Only a user who signed up and belongs to no other tenant can be attached: users are global, and an owner
    must neither see nor take another tenant's people. A user who works for several tenants (staff) is added
    by an operator in the admin. Every refusal is the same 400 on `email`, whether the address is unknown,
    ambiguous, inactive or taken, so the answer reveals nothing about other tenants. Adding someone already a
    member of this tenant is a 409 (the owner sees their members anyway).
    """
    _check_role(role)
    _check_ceiling(actor_role=actor_role, role=role)
    address = (email or "").strip()
    user_model = get_user_model()
    with transaction.atomic():
        # Locked: two tenants adding the same new user at once cannot both pass the "no other tenant" check.
        users = list(user_model.objects.select_for_update().filter(email__iexact=address).order_by("pk")[:2]) \
            if address else []
        if len(users) != 1 or not users[0].is_active:
            raise ApplicationError(MEMBER_ADD_REFUSED, field="email")
        user = users[0]
        memberships = set(TenantMembership.objects.filter(user=user).values_list("tenant_id", flat=True))
        if tenant.pk in memberships:
            raise ApplicationError("This user is already a member.", field="email", status_code=409)
        if memberships:
            raise ApplicationError(MEMBER_ADD_REFUSED, field="email")
        membership = TenantMembership.objects.create(tenant=tenant, user=user, role=role)
        audit_record(tenant=tenant, actor=actor, actor_label=actor_label, action="membership.add",
                     target=membership, detail={"user": user.get_username(), "role": role})
    return membership


def membership_add(*, tenant: Tenant, user_identifier: str, role: str, actor_role: str, actor=None,
                   actor_label: str = "") -> TenantMembership:
    """Operators only (demo seeding, scripts): attach any user, found by username or email, to the tenant.

    No tenant may reach this: it looks users up across tenants. Owners use `membership_add_by_email`.
    """
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

