"""GET /api/v1/metrics/...: thin views over analytics.selectors (rollups only, never raw events)."""
from __future__ import annotations

import zoneinfo

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.csv_renderer import MetricsCSVRenderer
from analytics.api.serializers import (
    CampaignMetricsAnswerSerializer,
    CampaignMetricsQuerySerializer,
    DomainMetricsAnswerSerializer,
    DomainMetricsQuerySerializer,
    MetricsRangeSerializer,
    SenderMetricsAnswerSerializer,
    TenantMetricsAnswerSerializer,
    TenantMetricsQuerySerializer,
)
from campaigns.interface import Campaign
from outreach import clock
from outreach.tenancy.api import TenantScopedViewMixin


class _MetricsView(TenantScopedViewMixin, generics.GenericAPIView):
    renderer_classes = [JSONRenderer, MetricsCSVRenderer]
    pagination_class = None
    query_class: type = MetricsRangeSerializer

    def get_queryset(self):  # no model of its own: every read goes through analytics.selectors
        return Campaign.objects.none()

    @property
    def query_serializers(self) -> dict:
        return {"get": self.query_class}

    def span(self, request: Request) -> tuple[selectors.MetricsRange, dict]:
        zone = selectors.tenant_time_zone(tenant_id=self.tenant.pk)
        today = clock.now().astimezone(zoneinfo.ZoneInfo(zone)).date()
        query = self.query_class(data=request.query_params.dict(), context={"today": today})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        span = selectors.MetricsRange(first=data["from"], last=data["to"], granularity=data["granularity"],
                                      time_zone=zone)
        return span, data

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:  # errors keep the API's one JSON shape, even for ?format=csv
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), "application/json"
        return response

    @staticmethod
    def header(span: selectors.MetricsRange) -> dict:
        return {"from": span.first, "to": span.last, "time_zone": span.time_zone}


class CampaignMetricsView(_MetricsView):
    query_class = CampaignMetricsQuerySerializer

    @extend_schema(summary="A campaign's metrics: totals, by step, by period, by sender",
                   parameters=[CampaignMetricsQuerySerializer],
                   responses={200: CampaignMetricsAnswerSerializer,
                              404: OpenApiResponse(description="Not found (or another tenant's)")})
    def get(self, request: Request, campaign_id: int) -> Response:
        span, _ = self.span(request)
        if not Campaign.objects.filter(tenant=self.tenant, pk=campaign_id).exists():
            raise NotFound()
        body = selectors.campaign_metrics(tenant_id=self.tenant.pk, campaign_id=campaign_id, span=span)
        return Response({"campaign_id": campaign_id, **self.header(span), "granularity": span.granularity, **body})


class TenantMetricsView(_MetricsView):
    query_class = TenantMetricsQuerySerializer

    @extend_schema(summary="The tenant's metrics: totals, by period, by campaign",
                   parameters=[TenantMetricsQuerySerializer], responses=TenantMetricsAnswerSerializer)
    def get(self, request: Request) -> Response:
        span, _ = self.span(request)
        body = selectors.tenant_metrics(tenant_id=self.tenant.pk, span=span)
        return Response({**self.header(span), "granularity": span.granularity, **body})


class SenderMetricsView(_MetricsView):
    @extend_schema(summary="Deliverability by sender identity", parameters=[MetricsRangeSerializer],
                   responses=SenderMetricsAnswerSerializer)
    def get(self, request: Request) -> Response:
        span, _ = self.span(request)
        return Response({**self.header(span), "senders": selectors.sender_metrics(tenant_id=self.tenant.pk, span=span)})


class DomainMetricsView(_MetricsView):
    query_class = DomainMetricsQuerySerializer

    @extend_schema(summary="Deliverability by recipient domain (the domains sent most to)",
                   parameters=[DomainMetricsQuerySerializer], responses=DomainMetricsAnswerSerializer)
    def get(self, request: Request) -> Response:
        span, data = self.span(request)
        domains = selectors.domain_metrics(tenant_id=self.tenant.pk, span=span, limit=data["limit"])
        return Response({**self.header(span), "domains": domains})


