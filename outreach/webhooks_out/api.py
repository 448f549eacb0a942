"""/api/v1/webhook-endpoints (admins) and /api/v1/webhook-deliveries (every attempt, for debugging)."""
from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.routers import SimpleRouter

from outreach.tenancy.api import StrictFieldsMixin, TenantScopedViewMixin, validated_input
from outreach.tenancy.models import Role
from outreach.webhooks_out.models import EventType, WebhookAttempt, WebhookDeliveryOut, WebhookEndpoint
from outreach.webhooks_out.signing import new_secret


class WebhookEndpointSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1,
                                        max_length=len(EventType.choices))
    secret = serializers.CharField(read_only=True, allow_null=True,
                                   help_text="Signs deliveries; returned on creation only, null afterwards")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "event_types", "description", "is_active", "secret", "created_at", "updated_at"]
        read_only_fields = ["id", "secret", "created_at", "updated_at"]

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Must be an http(s) URL.")
        return value

    def validate_event_types(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not getattr(instance, "_show_secret", False):
            data["secret"] = None
        return data

    def create(self, validated_data):
        endpoint = WebhookEndpoint.objects.create(tenant=self.context["tenant"], secret=new_secret(),
                                                  **validated_data)
        endpoint._show_secret = True
        return endpoint


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.event_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDeliveryOut
        fields = ["id", "endpoint", "event_id", "event_type", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "delivered_at", "created_at", "attempt_log"]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=WebhookDeliveryOut.Status.choices, required=False)


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints"),
    create=extend_schema(summary="Register a webhook endpoint (the response holds its signing secret, once)"),
    retrieve=extend_schema(summary="Get a webhook endpoint"),
    update=extend_schema(summary="Replace a webhook endpoint"),
    partial_update=extend_schema(summary="Update a webhook endpoint (e.g. is_active, event_types)"),
    destroy=extend_schema(summary="Delete a webhook endpoint"),
)
class WebhookEndpointViewSet(TenantScopedViewMixin, viewsets.ModelViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    idempotent = False  # the creation answer holds the secret, which is never stored in a replay


@extend_schema_view(
    list=extend_schema(summary="List outgoing webhook deliveries with every attempt",
                       parameters=[DeliveryFilterSerializer]),
    retrieve=extend_schema(summary="Get an outgoing webhook delivery with every attempt"),
)
class WebhookDeliveryViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             viewsets.GenericViewSet):
    queryset = WebhookDeliveryOut.objects.select_related("event").prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("attempted_at", "id")))
    serializer_class = DeliverySerializer
    read_role = Role.ADMIN
    query_serializers = {"list": DeliveryFilterSerializer}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            filters = validated_input(DeliveryFilterSerializer, self.request.query_params)
            if filters.get("endpoint"):
                queryset = queryset.filter(endpoint_id=filters["endpoint"])
            if filters.get("status"):
                queryset = queryset.filter(status=filters["status"])
        return queryset


router = SimpleRouter(trailing_slash=False)
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
urlpatterns = router.urls
