"""Tenant scoping and role checks for the REST API.

Integrations authenticate with a tenant API key (the key fixes tenant and role).
Staff use session auth; their tenant comes from their membership, chosen with the
`X-Tenant` header (a slug) when they belong to more than one.
"""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework import exceptions, permissions

from outreach.tenancy.authentication import ApiKeyPrincipal
from outreach.tenancy.models import Role, Tenant, TenantMembership, role_at_least


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    role: str
    actor_label: str
    user: object | None  # a Django user for session callers, None for API keys


def tenant_context(request) -> TenantContext:
    """The tenant and role a request acts as (cached on the request)."""
    cached = getattr(request, "_tenant_context", None)
    if cached is not None:
        return cached
    user = request.user
    if isinstance(user, ApiKeyPrincipal):
        ctx = TenantContext(tenant=user.tenant, role=user.role, actor_label=str(user), user=None)
    elif user and user.is_authenticated:
        memberships = TenantMembership.objects.select_related("tenant").filter(user=user)
        slug = request.headers.get("X-Tenant")
        if slug:
            memberships = memberships.filter(tenant__slug=slug)
        found = list(memberships[:2])
        if not found:
            raise exceptions.PermissionDenied("You are not a member of this tenant.")
        if len(found) > 1:
            raise exceptions.ValidationError({"X-Tenant": "You belong to several tenants: name one in X-Tenant."})
        ctx = TenantContext(tenant=found[0].tenant, role=found[0].role, actor_label=user.get_username(), user=user)
    else:
        raise exceptions.NotAuthenticated()
    request._tenant_context = ctx
    return ctx


class TenantRolePermission(permissions.BasePermission):
    """Viewers read; writes need `write_role` (member by default). Views may set `required_role`."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        ctx = tenant_context(request)
        if request.method in permissions.SAFE_METHODS:
            needed = getattr(view, "read_role", Role.VIEWER)
        else:
            needed = getattr(view, "write_role", Role.MEMBER)
        if not role_at_least(ctx.role, needed):
            raise exceptions.PermissionDenied(f"This needs the {needed} role; you have {ctx.role}.")
        return True


class TenantScopedViewMixin:
    """Every queryset filtered by the caller's tenant: another tenant's object is a 404."""

    permission_classes = [TenantRolePermission]

    @property
    def tenant(self) -> Tenant:
        return tenant_context(self.request).tenant

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.tenant)
