"""Campaigns, enrolments and external events: thin views over campaigns.services.

Enrolment, pause/resume/cancel and events all lock rows and enqueue work inside campaigns.services;
these views only check input, scope ids to the caller's tenant and shape the response.
"""
from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import services as campaign_services
from campaigns.api import selectors
from campaigns.api.serializers import (
    CampaignFilterSerializer,
    CampaignMetricsSerializer,
    CampaignSerializer,
    ContactCampaignBriefSerializer,
    ContactCampaignCreateSerializer,
    ContactCampaignDetailSerializer,
    ContactCampaignFilterSerializer,
    EnrolmentFilterSerializer,
    EnrolResultSerializer,
    EnrolSerializer,
    EventResultSerializer,
    ExternalEventSerializer,
    ReasonSerializer,
)
from campaigns.engine import EngineEvent
from campaigns.models import Campaign, ContactCampaign
from contacts.interface import Contact, Lead, address_block_reasons
from outreach import clock
from outreach.errors import ApplicationError
from outreach.pagination import ChangeFeedMixin, since_filters
from outreach.tenancy.api import TenantScopedViewMixin, tenant_scoped_ids, validated_input


def _reload(ids: list[int]) -> list[ContactCampaign]:
    """Contact campaigns by id with what the brief serializer reads, in one query."""
    rows = ContactCampaign.objects.filter(pk__in=ids).select_related("campaign", "current_plan_version")
    by_id = {row.pk: row for row in rows}
    return [by_id[pk] for pk in ids if pk in by_id]


def _reload_one(pk: int) -> ContactCampaign:
    rows = _reload([pk])
    if not rows:
        raise NotFound()  # deleted (with its contact) while the request ran
    return rows[0]


_NOT_FOUND = OpenApiResponse(description="Not found (or another tenant's)")
_CONFLICT = OpenApiResponse(description="Refused in the current state")


@extend_schema_view(
    list=extend_schema(summary="List campaigns", parameters=[CampaignFilterSerializer]),
    create=extend_schema(summary="Create a campaign brief"),
    retrieve=extend_schema(summary="Get a campaign"),
    update=extend_schema(summary="Replace a campaign's brief"),
    partial_update=extend_schema(summary="Update a campaign's brief (plans already written keep theirs)"),
)
class CampaignViewSet(TenantScopedViewMixin, mixins.CreateModelMixin, mixins.ListModelMixin,
                      mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    query_serializers = {"list": CampaignFilterSerializer}

    def get_queryset(self) -> QuerySet[Campaign]:
        if self.action == "list":
            filters = validated_input(CampaignFilterSerializer, self.request.query_params)
            return selectors.campaign_list(tenant=self.tenant, **filters)
        return super().get_queryset()

    @extend_schema(summary="Enrol contacts (or every contact of some leads)", request=EnrolSerializer,
                   responses={201: EnrolResultSerializer,
                              200: OpenApiResponse(EnrolResultSerializer, description="Nobody new was enrolled"),
                              409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def enrol(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        serializer = EnrolSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        contact_ids = tenant_scoped_ids(tenant=self.tenant, queryset=Contact.objects.all(),
                                        ids=data["contact_ids"], field="contact_ids")
        if data["lead_ids"]:
            lead_ids = tenant_scoped_ids(tenant=self.tenant, queryset=Lead.objects.all(), ids=data["lead_ids"],
                                         field="lead_ids")
            from_leads = (Contact.objects.filter(tenant=self.tenant, lead_id__in=lead_ids)
                          .order_by("id").values_list("id", flat=True))
            contact_ids = list(dict.fromkeys([*contact_ids, *from_leads]))
            if not contact_ids:
                raise ApplicationError("These leads have no contacts.", field="lead_ids")
        return self._enrol_and_report(campaign, contact_ids, data.get("plan"))

    def _enrol_and_report(self, campaign: Campaign, contact_ids: list[int], plan) -> Response:
        """Enrol who can be, and say exactly what happened to each contact: enrolled now, already enrolled
        (and in which state), or refused (why). 201 when someone was enrolled now, else 200."""
        before = dict(ContactCampaign.objects.filter(campaign=campaign, contact_id__in=contact_ids)
                      .values_list("contact_id", "status"))
        emails = dict(Contact.objects.filter(tenant=self.tenant, pk__in=[i for i in contact_ids if i not in before])
                      .exclude(email="").values_list("id", "email"))
        reasons = address_block_reasons(tenant_id=self.tenant.pk, channel="email", values=list(emails.values())) \
            if emails else {}
        blocked = {i: reasons[email] for i, email in emails.items() if email in reasons}
        wanted = [i for i in contact_ids if i not in blocked]
        enrolled = campaign_services.campaign_enrol_contacts(campaign=campaign, contact_ids=wanted, plan=plan) \
            if wanted else []
        rows = _reload([cc.pk for cc in enrolled])
        body = {
            "enrolled": len(rows), "contact_campaigns": rows,
            "enrolled_now": [row.contact_id for row in rows if row.contact_id not in before],
            "already_enrolled": [{"contact_id": row.contact_id, "contact_campaign_id": row.pk, "status": row.status}
                                 for row in rows if row.contact_id in before],
            "refused": [{"contact_id": i, "reason": reason} for i, reason in blocked.items()],
        }
        created = bool(body["enrolled_now"])
        return Response(EnrolResultSerializer(body).data, status=status.HTTP_201_CREATED if created else 200)

    def _change(self, request: Request, service) -> Response:
        campaign = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = service(campaign=campaign, actor=self.actor, reason=serializer.validated_data["reason"])
        campaign = result if isinstance(result, Campaign) else Campaign.objects.get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @extend_schema(summary="Pause a campaign (every running enrolment holds its sends)", request=ReasonSerializer,
                   responses={200: CampaignSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.campaign_pause)

    @extend_schema(summary="Resume a paused campaign", request=ReasonSerializer,
                   responses={200: CampaignSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.campaign_resume)

    @extend_schema(summary="Cancel a campaign (final: every enrolment is canceled, queued sends dropped)",
                   request=ReasonSerializer, responses={200: CampaignSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.campaign_cancel)

    @extend_schema(summary="Campaign metrics: totals and by node", responses=CampaignMetricsSerializer)
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        return Response(CampaignMetricsSerializer(selectors.campaign_metrics(campaign=campaign)).data)


def _with_timelines(serializer, rows: list[ContactCampaign]):
    serializer.context["timelines"] = selectors.contact_campaign_timelines(
        contact_campaign_ids=[row.pk for row in rows]
    )
    return serializer


class ContactEnrolmentsView(TenantScopedViewMixin, generics.GenericAPIView):
    """One contact's enrolments: plan, current node, status and timeline of each."""

    queryset = ContactCampaign.objects.all()
    serializer_class = ContactCampaignDetailSerializer
    query_serializers = {"get": EnrolmentFilterSerializer}

    def get_queryset(self) -> QuerySet[ContactCampaign]:
        return selectors.contact_campaign_list(tenant=self.tenant)

    def _contact(self) -> Contact:
        return get_object_or_404(Contact.objects.filter(tenant=self.tenant).only("id", "tenant_id"),
                                 pk=self.kwargs["contact_id"])

    @extend_schema(summary="A contact's enrolments with plan, current node, status and timeline",
                   parameters=[EnrolmentFilterSerializer], responses=ContactCampaignDetailSerializer(many=True))
    def get(self, request: Request, contact_id: int) -> Response:
        contact = self._contact()
        filters = validated_input(EnrolmentFilterSerializer, request.query_params)
        queryset = selectors.contact_campaign_list(tenant=self.tenant, contact_id=contact.pk,
                                                   status=filters.get("status"),
                                                   campaign_id=filters.get("campaign"))
        page = self.paginate_queryset(queryset)
        serializer = _with_timelines(self.get_serializer(page, many=True), page)
        return self.get_paginated_response(serializer.data)

    @extend_schema(summary="Enrol the contact in a campaign, with a given plan or through the AI",
                   request=ContactCampaignCreateSerializer,
                   responses={201: ContactCampaignDetailSerializer, 409: _CONFLICT})
    def post(self, request: Request, contact_id: int) -> Response:
        contact = self._contact()
        serializer = ContactCampaignCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        campaign = serializer.validated_data["campaign"]
        enrolled = campaign_services.campaign_enrol_contacts(campaign=campaign, contact_ids=[contact.pk],
                                                             plan=serializer.validated_data.get("plan"))
        rows = _reload([cc.pk for cc in enrolled])
        if not rows:
            raise ApplicationError("The contact could not be enrolled in this campaign.", status_code=409)
        output = _with_timelines(self.get_serializer(rows[0]), rows)
        return Response(output.data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List contact campaigns (enrolments)", parameters=[ContactCampaignFilterSerializer]),
    retrieve=extend_schema(summary="Get an enrolment with its plan and timeline"),
)
class ContactCampaignViewSet(ChangeFeedMixin, TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             viewsets.GenericViewSet):
    queryset = ContactCampaign.objects.select_related("campaign", "current_plan_version")
    query_serializers = {"list": ContactCampaignFilterSerializer}

    def get_queryset(self) -> QuerySet[ContactCampaign]:
        if self.action == "list":
            filters = validated_input(ContactCampaignFilterSerializer, self.request.query_params)
            return since_filters(selectors.contact_campaign_list(tenant=self.tenant, status=filters.get("status"),
                                                                 campaign_id=filters.get("campaign"),
                                                                 contact_id=filters.get("contact")), filters)
        return super().get_queryset()

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ContactCampaignDetailSerializer
        return ContactCampaignBriefSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        instance = self.get_object()
        return Response(_with_timelines(self.get_serializer(instance), [instance]).data)

    @extend_schema(
        summary="Report an external event (e.g. meeting_booked from a calendar integration)",
        request=ExternalEventSerializer, responses={200: EventResultSerializer, 404: _NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def events(self, request: Request, pk: str | None = None) -> Response:
        contact_campaign = self.get_object()
        serializer = ExternalEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = EngineEvent(
            type=data["type"], occurred_at=data.get("occurred_at") or clock.now(), node_id=None, node_visit=None,
            outbound_message_id=None, is_machine=False,
            detail={**data["detail"], "source": "api", "actor": self.tenant_ctx.actor_label},
        )
        result = campaign_services.contact_campaign_handle_event(contact_campaign_id=contact_campaign.pk,
                                                                 event=event)
        body = {"outcome": str(getattr(result, "outcome", "") or ""),
                "contact_campaign": _reload_one(contact_campaign.pk)}
        return Response(EventResultSerializer(body).data)

    def _change(self, request: Request, service) -> Response:
        contact_campaign = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        service(contact_campaign=contact_campaign, reason=serializer.validated_data["reason"], actor=self.actor)
        return Response(ContactCampaignBriefSerializer(_reload_one(contact_campaign.pk)).data)

    @extend_schema(summary="Pause one enrolment", request=ReasonSerializer,
                   responses={200: ContactCampaignBriefSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.contact_campaign_pause)

    @extend_schema(summary="Resume one enrolment", request=ReasonSerializer,
                   responses={200: ContactCampaignBriefSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.contact_campaign_resume)

    @extend_schema(summary="Cancel one enrolment (final)", request=ReasonSerializer,
                   responses={200: ContactCampaignBriefSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, campaign_services.contact_campaign_cancel)
