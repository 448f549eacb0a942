"""REST API for opt-outs, suppressions and do-not-contact domains (tenant-scoped).

Roles: viewers read, members write (manual unsubscribe, resubscribe, suppressions), admins fetch signed
unsubscribe links. Addresses are named by (channel, value), never by row id.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import compliance
from messaging.compliance.selectors import (
    address_status,
    suppression_list,
    unsubscribe_list,
    unsubscribe_stats,
)
from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason, UnsubscribeSource
from outreach import clock
from outreach.addresses import normalise_address, normalise_domain
from outreach.channels import ADDRESS_CHANNELS, CHANNEL_EMAIL, CHANNEL_EMAIL_DOMAIN, CHANNEL_SMS
from outreach.errors import ApplicationError
from outreach.tenancy.api import TenantScopedViewMixin, tenant_context, validated_input
from outreach.tenancy.models import Role

ADDRESS_CHANNEL_CHOICES = list(ADDRESS_CHANNELS)
SUPPRESSION_CHANNEL_CHOICES = [CHANNEL_EMAIL, CHANNEL_SMS]


# --------------------------------------------------------------------------- input serializers


class AddressSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ADDRESS_CHANNEL_CHOICES)
    value = serializers.CharField(max_length=254)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["value"] = normalise_address(attrs["channel"], attrs["value"])
        except ApplicationError as exc:
            raise serializers.ValidationError({exc.field or "value": exc.message}) from exc
        return attrs


class UnsubscribeCreateSerializer(AddressSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                   help_text="Why (kept as the opt-out's detail)")


class AddressRemoveSerializer(AddressSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the block is lifted (kept in the audit trail)")


class UnsubscribeFilterSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ADDRESS_CHANNEL_CHOICES, required=False)
    source = serializers.ChoiceField(choices=UnsubscribeSource.choices, required=False)


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, default=30,
                                    help_text="How many days back the per-day counts go")


class SuppressionCreateSerializer(AddressSerializer):
    channel = serializers.ChoiceField(choices=SUPPRESSION_CHANNEL_CHOICES)
    reason = serializers.ChoiceField(
        choices=[c for c in SuppressionReason.choices if c[0] != SuppressionReason.DOMAIN],
        default=SuppressionReason.MANUAL,
    )
    detail = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="Empty: permanent (soft bounces default to 72 hours)")


class SuppressionFilterSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=SUPPRESSION_CHANNEL_CHOICES, required=False)
    reason = serializers.ChoiceField(choices=SuppressionReason.choices, required=False)
    active = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="true: only in force; false: only expired")


class DomainSerializer(serializers.Serializer):
    domain = serializers.CharField(max_length=254)

    def validate_domain(self, value: str) -> str:
        try:
            return normalise_domain(value)
        except ApplicationError as exc:
            raise serializers.ValidationError(exc.message) from exc


class DomainCreateSerializer(DomainSerializer):
    detail = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class DomainRemoveSerializer(DomainSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the domain is lifted (kept in the audit trail)")


# --------------------------------------------------------------------------- output serializers


class UnsubscribeOutputSerializer(serializers.ModelSerializer):
    value = serializers.CharField(source="channel_value")

    class Meta:
        model = ContactUnsubscribe
        fields = ("channel", "value", "source", "detail", "contact_id", "created_at")


class SuppressionOutputSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = CommunicationSuppression
        fields = ("channel", "value", "reason", "detail", "expires_at", "active", "created_at", "updated_at")

    def get_active(self, obj: CommunicationSuppression) -> bool:
        return obj.expires_at is None or obj.expires_at > self.context["now"]


class DomainOutputSerializer(serializers.ModelSerializer):
    domain = serializers.CharField(source="value")

    class Meta:
        model = CommunicationSuppression
        fields = ("domain", "detail", "created_at")


class _BlockSerializer(serializers.Serializer):
    reason = serializers.CharField()
    detail = serializers.CharField()
    since = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class StatusOutputSerializer(serializers.Serializer):
    channel = serializers.CharField()
    value = serializers.CharField(help_text="The normalised address")
    blocked = serializers.BooleanField()
    blocked_reason = serializers.CharField(allow_null=True, help_text="What send_block_reason answers")
    unsubscribed = _BlockSerializer(allow_null=True, help_text="reason is the opt-out's source")
    suppressed = _BlockSerializer(allow_null=True)
    domain_suppressed = _BlockSerializer(allow_null=True)


class _DayCountSerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()
    by_source = serializers.DictField(child=serializers.IntegerField())


class StatsOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_source = serializers.DictField(child=serializers.IntegerField())
    by_channel = serializers.DictField(child=serializers.IntegerField())
    since = serializers.DateField(help_text="First day covered by by_day")
    by_day = _DayCountSerializer(many=True)


class LinkOutputSerializer(serializers.Serializer):
    url = serializers.URLField()
    mailto = serializers.CharField()
    headers = inline_serializer(
        "ListUnsubscribeHeaders",
        fields={
            "List-Unsubscribe": serializers.CharField(),
            "List-Unsubscribe-Post": serializers.CharField(),
        },
    )


# --------------------------------------------------------------------------- helpers




def _block(row: ContactUnsubscribe | CommunicationSuppression | None, reason: str) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"reason": reason, "detail": row.detail, "since": row.created_at,
            "expires_at": getattr(row, "expires_at", None)}


def _actor(request: Request) -> dict[str, Any]:
    ctx = tenant_context(request)
    return {"actor": ctx.user, "actor_label": ctx.actor_label}


# --------------------------------------------------------------------------- views


class UnsubscribesView(TenantScopedViewMixin, generics.ListAPIView):
    """Opt-outs of the caller's tenant. DELETE takes channel, value and reason as query parameters (or a body)."""
    # Undoing an opt-out or a suppression mails someone the system had stopped mailing: admins only.
    delete_role = Role.ADMIN

    serializer_class = UnsubscribeOutputSerializer
    query_serializers = {"get": UnsubscribeFilterSerializer}

    def get_queryset(self):
        filters = validated_input(UnsubscribeFilterSerializer, self.request.query_params)
        return unsubscribe_list(tenant=self.tenant, channel=filters.get("channel"), source=filters.get("source"))

    @extend_schema(summary="List opt-outs (cursor-paginated, newest first)", parameters=[UnsubscribeFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Unsubscribe an address manually (idempotent)",
        request=UnsubscribeCreateSerializer,
        responses={201: UnsubscribeOutputSerializer,
                   200: OpenApiResponse(UnsubscribeOutputSerializer, description="Already unsubscribed")},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(UnsubscribeCreateSerializer, request.data)
        row = compliance.unsubscribe_record(
            tenant=self.tenant, channel=data["channel"], value=data["value"],
            source=UnsubscribeSource.MANUAL,
            detail=data["reason"] or f"manual, by {tenant_context(request).actor_label}",
        )
        return Response(UnsubscribeOutputSerializer(row).data,
                        status=status.HTTP_201_CREATED if row.was_created else status.HTTP_200_OK)

    @extend_schema(
        summary="Resubscribe an address (deletes the opt-out; audited with who, when and why)",
        parameters=[AddressRemoveSerializer],
        responses={204: None, 404: OpenApiResponse(description="The address is not unsubscribed")},
    )
    def delete(self, request: Request) -> Response:
        # Some HTTP clients drop DELETE bodies: query parameters work too.
        data = validated_input(AddressRemoveSerializer, request.data or request.query_params)
        compliance.unsubscribe_remove(tenant=self.tenant, channel=data["channel"], value=data["value"],
                                      reason=data["reason"], **_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UnsubscribeStatusView(TenantScopedViewMixin, APIView):
    """One address's standing in the caller's tenant: opt-out, own suppression, domain suppression."""

    query_serializers = {"get": AddressSerializer}

    @extend_schema(summary="Whether an address is unsubscribed or suppressed, why and since when",
                   parameters=[AddressSerializer], responses=StatusOutputSerializer)
    def get(self, request: Request) -> Response:
        data = validated_input(AddressSerializer, request.query_params)
        found = address_status(tenant=self.tenant, channel=data["channel"], value=data["value"])
        return Response(StatusOutputSerializer({
            "channel": found.channel,
            "value": found.value,
            "blocked": found.blocked_reason is not None,
            "blocked_reason": found.blocked_reason,
            "unsubscribed": _block(found.unsubscribe, found.unsubscribe.source if found.unsubscribe else ""),
            "suppressed": _block(found.suppression, found.suppression.reason if found.suppression else ""),
            "domain_suppressed": _block(found.domain_suppression, SuppressionReason.DOMAIN),
        }).data)


class UnsubscribeStatsView(TenantScopedViewMixin, APIView):
    """All-time counts by source and channel, and per-day counts over the last `days` days (UTC)."""

    query_serializers = {"get": StatsQuerySerializer}

    @extend_schema(summary="Opt-out counts by source, channel and day", parameters=[StatsQuerySerializer],
                   responses=StatsOutputSerializer)
    def get(self, request: Request) -> Response:
        data = validated_input(StatsQuerySerializer, request.query_params)
        stats = unsubscribe_stats(tenant=self.tenant, days=data["days"])
        return Response(StatsOutputSerializer(stats).data)


class UnsubscribeLinkView(TenantScopedViewMixin, APIView):
    """The link and headers to put in mail sent from other tools (admin role)."""

    read_role = Role.ADMIN  # a link unsubscribes whoever it names: only admins may mint them
    query_serializers = {"get": AddressSerializer}

    @extend_schema(summary="The signed unsubscribe URL and List-Unsubscribe headers for an address",
                   parameters=[AddressSerializer], responses=LinkOutputSerializer)
    def get(self, request: Request) -> Response:
        data = validated_input(AddressSerializer, request.query_params)
        args = {"tenant": self.tenant, "channel": data["channel"], "value": data["value"]}
        return Response(LinkOutputSerializer({
            "url": compliance.unsubscribe_url(**args),
            "mailto": compliance.unsubscribe_mailto(**args),
            "headers": compliance.list_unsubscribe_headers(**args),
        }).data)


class SuppressionsView(TenantScopedViewMixin, generics.ListAPIView):
    """Address suppressions (email, sms); do-not-contact domains live under /suppressions/domains.

    DELETE takes channel, value and reason as query parameters (or a body)."""
    # Undoing an opt-out or a suppression mails someone the system had stopped mailing: admins only.
    delete_role = Role.ADMIN

    serializer_class = SuppressionOutputSerializer
    query_serializers = {"get": SuppressionFilterSerializer}

    def get_queryset(self):
        filters = validated_input(SuppressionFilterSerializer, self.request.query_params)
        if filters.get("channel"):
            return suppression_list(tenant=self.tenant, channel=filters["channel"], reason=filters.get("reason"),
                                    active=filters.get("active"))
        return suppression_list(tenant=self.tenant, reason=filters.get("reason"),
                                active=filters.get("active")).exclude(channel=CHANNEL_EMAIL_DOMAIN)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": clock.now()}

    @extend_schema(summary="List address suppressions (cursor-paginated, newest first)",
                   parameters=[SuppressionFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Suppress an address (upsert; a permanent suppression is never downgraded)",
                   request=SuppressionCreateSerializer, responses={201: SuppressionOutputSerializer})
    def post(self, request: Request) -> Response:
        data = validated_input(SuppressionCreateSerializer, request.data)
        row = compliance.suppression_add(tenant=self.tenant, channel=data["channel"], value=data["value"],
                                         reason=data["reason"], detail=data["detail"],
                                         expires_at=data["expires_at"])
        return Response(SuppressionOutputSerializer(row, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="Lift an address suppression (audited)", parameters=[AddressRemoveSerializer],
                   responses={204: None, 404: OpenApiResponse(description="The address is not suppressed")})
    def delete(self, request: Request) -> Response:
        data = validated_input(AddressRemoveSerializer, request.data or request.query_params)
        compliance.suppression_remove(tenant=self.tenant, channel=data["channel"], value=data["value"],
                                      reason=data["reason"], **_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuppressionDomainsView(TenantScopedViewMixin, generics.ListAPIView):
    """The tenant-wide do-not-contact domain list: every address at a listed domain is blocked.

    DELETE takes domain and reason as query parameters (or a body)."""
    # Undoing an opt-out or a suppression mails someone the system had stopped mailing: admins only.
    delete_role = Role.ADMIN

    serializer_class = DomainOutputSerializer

    def get_queryset(self):
        return suppression_list(tenant=self.tenant, channel=CHANNEL_EMAIL_DOMAIN)

    @extend_schema(summary="List do-not-contact domains (cursor-paginated, newest first)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Add a do-not-contact domain (idempotent)", request=DomainCreateSerializer,
                   responses={201: DomainOutputSerializer})
    def post(self, request: Request) -> Response:
        data = validated_input(DomainCreateSerializer, request.data)
        row = compliance.domain_suppression_add(tenant=self.tenant, domain=data["domain"], detail=data["detail"])
        return Response(DomainOutputSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Remove a do-not-contact domain (audited)", parameters=[DomainRemoveSerializer],
                   responses={204: None, 404: OpenApiResponse(description="The domain is not listed")})
    def delete(self, request: Request) -> Response:
        data = validated_input(DomainRemoveSerializer, request.data or request.query_params)
        compliance.suppression_remove(tenant=self.tenant, channel=CHANNEL_EMAIL_DOMAIN,
                                      value=data["domain"], reason=data["reason"], **_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

