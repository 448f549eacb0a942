"""The replies inbox over the API (issue 11): `GET /api/v1/replies` (filters: class, needs_review, held,
contact, campaign, received_since; cursor pages newest first), `GET /api/v1/replies/{id}`, and
`POST /api/v1/replies/{id}/reclassify` (admins: correct the class; the engine hears the corrected event),
`POST /api/v1/replies/{id}/release` and `.../discard` (admins: a held reply is trusted and fed to the engine as on
arrival, or kept and never fed). The three are the admin inbox's switches (messaging.inbound.review), audited
the same way.

Viewers read. Another tenant's reply is a 404. The list is `messaging.inbound.selectors.replies_list`, so a
new filter is one keyword there and one field in `ReplyFilterSerializer`.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from messaging.inbound.review import CORRECTABLE_LABELS, inbound_discard, inbound_reclassify, inbound_release
from messaging.inbound.selectors import REPLY_CLASSES, replies_list
from messaging.models import InboundMessage
from outreach.pagination import CreatedCursorPagination
from outreach.tenancy.api import TenantScopedViewMixin, validated_input
from outreach.tenancy.models import Role


class ReceivedCursorPagination(CreatedCursorPagination):
    ordering = ("-received_at", "-id")


class ReplyFilterSerializer(serializers.Serializer):
    # "class" is a Python keyword: the query parameter is `class`, the field reply_class.
    needs_review = serializers.BooleanField(required=False, allow_null=True, default=None,
                                            help_text="true: held, a reply the rules could not read, or one "
                                                      "flagged with a review_reason")
    held = serializers.BooleanField(required=False, allow_null=True, default=None,
                                    help_text="true: held for review (SPF and DKIM failed, or spam)")
    contact = serializers.IntegerField(required=False, min_value=1)
    campaign = serializers.IntegerField(required=False, min_value=1)
    received_since = serializers.DateTimeField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = serializers.ChoiceField(choices=REPLY_CLASSES, required=False)
        return fields


class ReplySerializer(serializers.ModelSerializer):
    contact_id = serializers.IntegerField(source="outbound_message.contact_id", allow_null=True, default=None)
    campaign_id = serializers.IntegerField(source="outbound_message.contact_campaign.campaign_id", allow_null=True,
                                           default=None)
    step = serializers.CharField(source="outbound_message.node_id", allow_null=True, default=None)

    class Meta:
        model = InboundMessage
        fields = ["id", "received_at", "from_email", "subject", "kind", "classification", "classification_confidence",
                  "stop_request", "return_date", "bounce_type", "language", "new_text", "verdict", "review_status",
                  "review_reason", "outbound_message_id", "contact_id", "campaign_id", "step"]
        read_only_fields = fields


class ReclassifySerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=CORRECTABLE_LABELS)
    stop_request = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=2000, help_text="Why (kept in the audit trail)")


class ReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000,
                                   help_text="Why this held reply is trusted (kept in the audit trail)")


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                   help_text="Why (kept in the audit trail)")


@extend_schema_view(
    list=extend_schema(summary="List replies (cursor-paginated, newest first)", parameters=[ReplyFilterSerializer]),
    retrieve=extend_schema(summary="Get a reply"),
)
class ReplyViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReplySerializer
    pagination_class = ReceivedCursorPagination
    write_role = Role.ADMIN
    queryset = InboundMessage.objects.all()
    query_serializers = {"list": ReplyFilterSerializer}

    def get_queryset(self):
        if self.action != "list":
            return replies_list(tenant_id=self.tenant.id)
        filters = validated_input(ReplyFilterSerializer, self.request.query_params)
        return replies_list(tenant_id=self.tenant.id, reply_class=filters.get("class"),
                            needs_review=filters.get("needs_review"), held=filters.get("held"),
                            contact_id=filters.get("contact"), campaign_id=filters.get("campaign"),
                            received_since=filters.get("received_since"))

    @extend_schema(summary="Correct a reply's class (the campaign engine hears the corrected event; audited)",
                   request=ReclassifySerializer, responses=ReplySerializer)
    @action(detail=True, methods=["post"])
    def reclassify(self, request: Request, pk: str | None = None) -> Response:
        data = validated_input(ReclassifySerializer, request.data)
        row = inbound_reclassify(inbound=self.get_object(), label=data["label"], stop_request=data["stop_request"],
                                 actor=self.actor, reason=data["reason"])
        return self._reply_response(row)

    @extend_schema(summary="Release a held reply (it moves the contact's plan as it would have on arrival; audited)",
                   request=ReleaseSerializer, responses=ReplySerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        data = validated_input(ReleaseSerializer, request.data)
        return self._reply_response(inbound_release(inbound=self.get_object(), actor=self.actor, reason=data["reason"]))

    @extend_schema(summary="Discard a held reply (it stays stored and never moves a plan; audited)",
                   request=DiscardSerializer, responses=ReplySerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        data = validated_input(DiscardSerializer, request.data)
        return self._reply_response(inbound_discard(inbound=self.get_object(), actor=self.actor, reason=data["reason"]))

    def _reply_response(self, row: InboundMessage) -> Response:
        return Response(ReplySerializer(replies_list(tenant_id=self.tenant.id).get(pk=row.pk)).data)
