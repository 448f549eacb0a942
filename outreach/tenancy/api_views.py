"""API keys (admins) and members (owners) of the caller's tenant."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from outreach.tenancy import access_services
from outreach.tenancy.api import StrictFieldsMixin, TenantScopedViewMixin
from outreach.tenancy.models import ApiKey, Role, TenantMembership


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "is_active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices, help_text="At most your own role")


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret: shown once, never again")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = TenantMembership
        fields = ["id", "user", "username", "email", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    email = serializers.EmailField(max_length=254, help_text=(
        "Email of a user who signed up and belongs to no other tenant (others are added by an operator)"))
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


_FORBIDDEN = OpenApiResponse(description="Above your own role")
_CONFLICT = OpenApiResponse(description="Refused: already a member, or the last owner")


@extend_schema_view(
    list=extend_schema(summary="List API keys (secrets are never shown again)"),
    retrieve=extend_schema(summary="Get an API key"),
)
class ApiKeyViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    viewsets.GenericViewSet):
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    # The response holds the key's secret: it is shown once and never stored, so it cannot be replayed.
    idempotent = False

    @extend_schema(summary="Issue an API key; the response holds the secret, once",
                   request=ApiKeyCreateSerializer, responses={201: IssuedApiKeySerializer, 403: _FORBIDDEN})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ctx = self.tenant_ctx
        issued = access_services.api_key_issue(tenant=ctx.tenant, actor_role=ctx.role, actor=ctx.user,
                                               **serializer.validated_data)
        issued.api_key.key = issued.raw_key
        return Response(IssuedApiKeySerializer(issued.api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key (it stops working at once)", request=None,
                   responses={200: ApiKeySerializer, 403: _FORBIDDEN})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        ctx = self.tenant_ctx
        api_key = access_services.api_key_revoke_checked(api_key=self.get_object(), actor_role=ctx.role,
                                                         actor=ctx.user)
        return Response(ApiKeySerializer(api_key).data)


@extend_schema_view(
    list=extend_schema(summary="List the tenant's members"),
    retrieve=extend_schema(summary="Get a member"),
    destroy=extend_schema(summary="Remove a member (a tenant keeps at least one owner)",
                          responses={204: None, 409: _CONFLICT}),
)
class MembershipViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = TenantMembership.objects.select_related("user")
    serializer_class = MembershipSerializer
    read_role = Role.ADMIN
    write_role = Role.OWNER

    @extend_schema(summary="Add a signed-up user who belongs to no other tenant, by email",
                   request=MembershipCreateSerializer, responses={201: MembershipSerializer, 409: _CONFLICT})
    def create(self, request: Request) -> Response:
        serializer = MembershipCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ctx = self.tenant_ctx
        membership = access_services.membership_add_by_email(
            tenant=ctx.tenant, email=serializer.validated_data["email"],
            role=serializer.validated_data["role"], actor_role=ctx.role, actor=ctx.user, actor_label=ctx.actor_label,
        )
        membership = self.get_queryset().get(pk=membership.pk)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a member's role", request=MembershipUpdateSerializer,
                   responses={200: MembershipSerializer, 409: _CONFLICT})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        membership = self.get_object()
        serializer = MembershipUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ctx = self.tenant_ctx
        membership = access_services.membership_set_role(
            membership=membership, role=serializer.validated_data["role"], actor_role=ctx.role, actor=ctx.user,
            actor_label=ctx.actor_label,
        )
        return Response(MembershipSerializer(self.get_queryset().get(pk=membership.pk)).data)

    def perform_destroy(self, instance: TenantMembership) -> None:
        ctx = self.tenant_ctx
        access_services.membership_remove(membership=instance, actor_role=ctx.role, actor=ctx.user,
                                          actor_label=ctx.actor_label)
