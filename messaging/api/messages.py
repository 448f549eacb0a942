"""GET /api/v1/messages: the outbound messages of the caller's tenant with their status and provider events.

A CRM syncs from it: filter by contact, campaign, status and time; with `created_since` / `updated_since`
it is a change feed (oldest first, keyset cursor on (time, id), stable under inserts).
Three queries per page whatever its size: the messages (campaign joined in), their events, and the key.
"""
from __future__ import annotations

from django.db.models import F, Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from messaging.models import MessageEvent, OutboundMessage
from outreach.pagination import ChangeFeedMixin, since_filters
from outreach.tenancy.api import ChangeFeedFilterSerializer, TenantScopedViewMixin, validated_input

_ID = {"required": False, "min_value": 1, "max_value": 2**63 - 1}


class MessageEventSerializer(serializers.ModelSerializer):
    received_at = serializers.DateTimeField(source="created_at", read_only=True,
                                            help_text="When the provider's webhook reached us")

    class Meta:
        model = MessageEvent
        fields = ["id", "event_type", "occurred_at", "received_at", "is_machine", "url", "bounce_type", "reason"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="campaign_id", read_only=True, allow_null=True)
    events = MessageEventSerializer(many=True, read_only=True, help_text="Provider events, in occurrence order")

    class Meta:
        model = OutboundMessage
        fields = ["id", "contact", "contact_campaign", "campaign", "channel", "node_id", "node_visit", "status",
                  "status_reason", "delivery_status", "to_address", "subject", "created_at", "sent_at",
                  "updated_at", "events"]
        read_only_fields = fields


class MessageFilterSerializer(ChangeFeedFilterSerializer):
    contact = serializers.IntegerField(**_ID)
    campaign = serializers.IntegerField(**_ID)
    status = serializers.ChoiceField(choices=OutboundMessage.Status.choices, required=False)
    delivery_status = serializers.ChoiceField(choices=OutboundMessage.DeliveryStatus.choices, required=False)


def message_list(*, tenant_id: int, contact: int | None = None, campaign: int | None = None,
                 status: str | None = None, delivery_status: str | None = None) -> QuerySet[OutboundMessage]:
    queryset = (OutboundMessage.objects.filter(tenant_id=tenant_id)
                .annotate(campaign_id=F("contact_campaign__campaign_id"))
                .defer("body_text", "body_html", "references", "last_error")
                .prefetch_related(Prefetch("events", queryset=MessageEvent.objects.order_by("occurred_at", "id"))))
    if contact is not None:
        queryset = queryset.filter(contact_id=contact)
    if campaign is not None:
        queryset = queryset.filter(contact_campaign__campaign_id=campaign)
    if status:
        queryset = queryset.filter(status=status)
    if delivery_status is not None:
        queryset = queryset.filter(delivery_status=delivery_status)
    return queryset


@extend_schema_view(
    list=extend_schema(summary="List outbound messages with their status and events (a change feed with "
                               "created_since / updated_since)", parameters=[MessageFilterSerializer]),
    retrieve=extend_schema(summary="Get a message with its events"),
)
class MessageViewSet(ChangeFeedMixin, TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     viewsets.GenericViewSet):
    queryset = OutboundMessage.objects.all()  # the schema's type for {id}; get_queryset narrows it
    serializer_class = MessageSerializer
    query_serializers = {"list": MessageFilterSerializer}

    def get_queryset(self) -> QuerySet[OutboundMessage]:
        filters = {}
        if self.action == "list":
            filters = validated_input(MessageFilterSerializer, self.request.query_params)
        since = {name: filters.pop(name, None) for name in ("created_since", "updated_since")}
        return since_filters(message_list(tenant_id=self.tenant.pk, **filters), since)
