"""Tenant scoping and role checks for the REST API.

Integrations authenticate with a tenant API key (the key fixes tenant and role).
Staff use session auth; their tenant comes from their membership, chosen with the
`X-Tenant` header (a slug) when they belong to more than one.

Roles: viewers read; members run campaigns and edit leads and contacts; admins
manage sender identities and API keys; owners manage members. A view states the
role it needs per HTTP method class (`read_role` / `write_role`) or per action
(`action_roles`), and every queryset is filtered by the caller's tenant so that
another tenant's object is a 404, never a 403 that would confirm it exists.
"""
from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions, permissions, serializers

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


def required_role(request, view) -> str:
    """The role a request needs: the view's per-action role, else its read, delete or write role."""
    action = getattr(view, "action", None)
    action_roles = getattr(view, "action_roles", None) or {}
    if action and action in action_roles:
        return action_roles[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", Role.VIEWER)
    if request.method == "DELETE" and getattr(view, "delete_role", None):
        return view.delete_role
    return getattr(view, "write_role", Role.MEMBER)


class TenantRolePermission(permissions.BasePermission):
    """Viewers read; writes need `write_role` (member by default); `action_roles` overrides per action."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        ctx = tenant_context(request)
        needed = required_role(request, view)
        if not role_at_least(ctx.role, needed):
            raise exceptions.PermissionDenied(f"This needs the {needed} role; you have {ctx.role}.")
        return True


class TenantScopedViewMixin:
    """Every queryset filtered by the caller's tenant: another tenant's object is a 404."""

    permission_classes = [TenantRolePermission]

    @property
    def tenant(self) -> Tenant:
        return tenant_context(self.request).tenant

    @property
    def tenant_ctx(self) -> TenantContext:
        return tenant_context(self.request)

    @property
    def actor(self):
        """Who to record in audit entries: the Django user, or None for an API key."""
        return tenant_context(self.request).user

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.tenant)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        # Schema generation instantiates serializers without a request.
        if getattr(self, "swagger_fake_view", False) or self.request is None:
            return context
        user = getattr(self.request, "user", None)
        if user is not None and user.is_authenticated:
            context["tenant"] = self.tenant
        return context


class TenantScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key given by id that only accepts the caller's own tenant's rows.

    Another tenant's id reads as "does not exist", like a 404, so ids cannot be probed.
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant = self.context.get("tenant")
        if tenant is None:
            return queryset.none()
        return queryset.filter(tenant=tenant)


def tenant_scoped_ids(*, tenant: Tenant, queryset, ids: list[int], field: str) -> list[int]:
    """Check that every id names a row of the caller's tenant; a 400 naming the missing ones otherwise."""
    wanted = list(dict.fromkeys(ids))
    found = set(queryset.filter(tenant=tenant, pk__in=wanted).values_list("pk", flat=True))
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise exceptions.ValidationError({field: [f"Unknown ids: {', '.join(str(pk) for pk in missing[:20])}."]})
    return wanted


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <key>` in the OpenAPI schema."""

    target_class = "outreach.tenancy.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


def _unstorable_text(text: str) -> bool:
    # PostgreSQL rejects NUL in text and jsonb, and lone surrogates cannot be encoded as UTF-8.
    return "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text)


def _json_problem(value, path: str = "") -> str | None:
    if isinstance(value, str):
        return f"{path or 'value'}: text must not contain NUL or surrogate characters." \
            if _unstorable_text(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _unstorable_text(str(key)):
                return f"{path or 'value'}: keys must not contain NUL or surrogate characters."
            problem = _json_problem(item, f"{path}.{key}" if path else str(key))
            if problem:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{index}]")
            if problem:
                return problem
    return None


class StorableJSONField(serializers.JSONField):
    """A JSON input that PostgreSQL can store as jsonb (no NUL, no lone surrogates; finite numbers)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = _json_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


def validated_input(serializer_class, data) -> dict:
    """A body or query string checked by a serializer: bad input is a 400 naming the field or parameter."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
