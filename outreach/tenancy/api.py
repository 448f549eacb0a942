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

from collections.abc import Mapping
from dataclasses import dataclass

from django.http import QueryDict
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from outreach.tenancy import idempotency
from outreach.tenancy.authentication import TENANT_CONTEXT_ATTRIBUTE, ApiKeyPrincipal
from outreach.tenancy.models import Role, Tenant, TenantMembership, role_at_least


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    role: str
    actor_label: str
    user: object | None  # a Django user for session callers, None for API keys


def tenant_context(request) -> TenantContext:
    """The tenant and role a request acts as (cached on the request)."""
    cached = getattr(request, TENANT_CONTEXT_ATTRIBUTE, None)
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
    setattr(request, TENANT_CONTEXT_ATTRIBUTE, ctx)
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


PAGINATION_PARAMS = ("cursor", "page_size")


def unknown_names_error(names, *, what: str) -> exceptions.ValidationError:
    return exceptions.ValidationError(
        {name: [ErrorDetail(f"Unknown {what}.", code=f"unknown_{what.replace(' ', '_')}")] for name in names})


class _IdempotentReplay(Exception):  # noqa: N818 - control flow, never shown
    def __init__(self, replay: idempotency.Replay) -> None:
        super().__init__("replay")
        self.replay = replay


class TenantScopedViewMixin:
    """Every queryset filtered by the caller's tenant: another tenant's object is a 404.

    Also the API's request rules, in one place: an unknown query parameter is a 400 naming it
    (`query_serializers` maps an action, or "get" on plain views, to the serializer of its filters;
    lists also take `cursor` and `page_size`), and a POST with an `Idempotency-Key` runs once
    (outreach.tenancy.idempotency; `idempotent = False` opts a view out).
    """

    permission_classes = [TenantRolePermission]
    query_serializers: dict[str, type[serializers.Serializer]] = {}
    idempotent = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in permissions.SAFE_METHODS:
            self._check_query_params(request)
        if request.method == "POST" and request.headers.get(idempotency.HEADER) is not None:
            self._claim_idempotency_key(request)

    def _query_key(self, request) -> str:
        return getattr(self, "action", None) or request.method.lower()

    def _check_query_params(self, request) -> None:
        key = self._query_key(request)
        serializer_class = self.query_serializers.get(key)
        allowed = set(serializer_class().fields) if serializer_class else set()
        if key in ("list", "get") and isinstance(self, generics.GenericAPIView) and self.pagination_class:
            allowed.update(PAGINATION_PARAMS)
        unknown = [name for name in request.query_params if name not in allowed]
        if unknown:
            raise unknown_names_error(unknown, what="query parameter")

    def _claim_idempotency_key(self, request) -> None:
        key = request.headers[idempotency.HEADER]
        if not self.idempotent:
            raise exceptions.ValidationError(
                {idempotency.HEADER: [ErrorDetail("Not supported on this endpoint.", code="not_supported")]})
        outcome = idempotency.claim(
            tenant=self.tenant, key=key, method=request.method, path=request.path,
            fingerprint_hex=idempotency.fingerprint(method=request.method, path=request.path, data=request.data))
        if isinstance(outcome, idempotency.Replay):
            raise _IdempotentReplay(outcome)
        self._idempotency_claim = outcome

    def handle_exception(self, exc):
        if isinstance(exc, _IdempotentReplay):
            response = Response(exc.replay.body, status=exc.replay.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        claimed = getattr(self, "_idempotency_claim", None)
        if claimed is not None:
            self._idempotency_claim = None
            idempotency.record(claimed=claimed, status_code=response.status_code, body=response.data)
        return super().finalize_response(request, response, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            claimed = getattr(self, "_idempotency_claim", None)
            if claimed is not None:  # crashed: free the key so the client's retry runs
                idempotency.release(claimed=claimed)
            raise

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


class StrictFieldsMixin:
    """A body field the serializer does not know is a 400 naming it, not silently dropped (a typo)."""

    def to_internal_value(self, data):
        unknown = [name for name in data if name not in self.fields] if isinstance(data, Mapping) else []
        if not unknown:
            return super().to_internal_value(data)
        problems = dict(unknown_names_error(unknown, what="field").detail)
        try:
            super().to_internal_value(data)
        except exceptions.ValidationError as exc:  # every problem at once: unknown and invalid fields
            if isinstance(exc.detail, dict):
                problems = {**exc.detail, **problems}
        raise exceptions.ValidationError(problems)


class ChangeFeedFilterSerializer(serializers.Serializer):
    """`created_since` / `updated_since`: with either, a list becomes a change feed (oldest first, keyset
    cursor on (time, id)); both bounds are inclusive, so a poller passing its last seen time sees it again."""

    created_since = serializers.DateTimeField(required=False, help_text="Rows created at or after this time; "
                                              "pages oldest first")
    updated_since = serializers.DateTimeField(required=False, help_text="Rows changed at or after this time; "
                                              "pages oldest change first")


def validated_input(serializer_class, data) -> dict:
    """A body or query string checked by a serializer: bad input is a 400 naming the field or parameter;
    an unknown one is a 400 too. A query string is read as plain values, so `?status=` is an invalid
    status (400), not silently "no filter" (DRF's form-input reading would drop it)."""
    if isinstance(data, QueryDict) and not any(hasattr(v, "chunks") for v in data.values()):
        data = data.dict()
    known = {*serializer_class().fields, *PAGINATION_PARAMS}  # a list's query string also pages
    unknown = [name for name in data if name not in known] if isinstance(data, Mapping) else []
    if unknown:
        raise unknown_names_error(unknown, what="field")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
