"""Sender identities over the API: viewers read; admins create, pause, resume and sync them."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from messaging.models import EmailSenderIdentity
from messaging.sendgrid.errors import SendGridError
from messaging.sendgrid.identities import sender_identity_create, sender_identity_set_paused, sender_identity_sync
from outreach.errors import ApplicationError
from outreach.tenancy.api import StrictFieldsMixin, TenantScopedViewMixin
from outreach.tenancy.models import Role


class SenderIdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailSenderIdentity
        fields = ["id", "from_email", "from_name", "reply_to", "nickname", "status", "is_paused",
                  "provider_sender_id", "last_synced_at", "created_at"]
        read_only_fields = fields


class SenderIdentityCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    from_email = serializers.EmailField(max_length=254)
    from_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    reply_to = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="",
                                      help_text="Leave empty: with INBOUND_REPLY_DOMAIN set the system issues the "
                                                "tenant's reply address (any other is a 400); else from_email")
    nickname = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class SenderIdentityFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=EmailSenderIdentity.Status.choices, required=False)


_UNAVAILABLE = OpenApiResponse(description="SendGrid could not be reached; try again")


@extend_schema_view(
    list=extend_schema(summary="List sender identities", parameters=[SenderIdentityFilterSerializer]),
    retrieve=extend_schema(summary="Get a sender identity"),
)
class SenderIdentityViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                            viewsets.GenericViewSet):
    queryset = EmailSenderIdentity.objects.all()
    serializer_class = SenderIdentitySerializer
    write_role = Role.ADMIN
    query_serializers = {"list": SenderIdentityFilterSerializer}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            filters = SenderIdentityFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if filters.validated_data.get("status"):
                queryset = queryset.filter(status=filters.validated_data["status"])
        return queryset

    @extend_schema(summary="Add a sender identity (SendGrid mails the address a verification link)",
                   request=SenderIdentityCreateSerializer,
                   responses={201: SenderIdentitySerializer, 409: OpenApiResponse(description="Already exists")})
    def create(self, request: Request) -> Response:
        serializer = SenderIdentityCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        identity = sender_identity_create(tenant=self.tenant, **serializer.validated_data)
        return Response(SenderIdentitySerializer(identity).data, status=status.HTTP_201_CREATED)

    def _set_paused(self, paused: bool) -> Response:
        identity = sender_identity_set_paused(identity=self.get_object(), paused=paused, actor=self.actor)
        return Response(SenderIdentitySerializer(identity).data)

    @extend_schema(summary="Pause sending from this identity", request=None, responses=SenderIdentitySerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._set_paused(True)

    @extend_schema(summary="Resume sending from this identity", request=None, responses=SenderIdentitySerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._set_paused(False)

    @extend_schema(summary="Refresh the verification status from SendGrid", request=None,
                   responses={200: SenderIdentitySerializer, 503: _UNAVAILABLE})
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        identity = self.get_object()
        try:
            identity = sender_identity_sync(identity=identity)
        except SendGridError as exc:
            raise ApplicationError(f"SendGrid could not be asked: {exc.message}",
                                   status_code=status.HTTP_503_SERVICE_UNAVAILABLE) from exc
        return Response(SenderIdentitySerializer(identity).data)
