"""Leads, contacts and CSV imports: thin views over contacts.services, contacts.imports and contacts.selectors."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from contacts import imports, selectors, services
from contacts.api.serializers import (
    ContactFilterSerializer,
    ContactSerializer,
    ImportJobCreateSerializer,
    ImportJobDetailSerializer,
    ImportJobFilterSerializer,
    ImportJobSerializer,
    LeadFilterSerializer,
    LeadSerializer,
)
from contacts.models import Contact, ImportJob, Lead
from outreach.errors import ApplicationError
from outreach.pagination import ChangeFeedMixin, since_filters
from outreach.tenancy.api import TenantScopedViewMixin, validated_input


@extend_schema_view(
    list=extend_schema(summary="List leads", parameters=[LeadFilterSerializer]),
    create=extend_schema(summary="Create a lead (its AI analysis is queued)"),
    retrieve=extend_schema(summary="Get a lead"),
    update=extend_schema(summary="Replace a lead's fields"),
    partial_update=extend_schema(summary="Update a lead"),
    destroy=extend_schema(summary="Delete a lead and its contacts (refused while one is in a running campaign)",
                          responses={204: None, 409: OpenApiResponse(description="Still in a running campaign")}),
)
class LeadViewSet(ChangeFeedMixin, TenantScopedViewMixin, viewsets.ModelViewSet):
    queryset = Lead.objects.all()
    serializer_class = LeadSerializer
    query_serializers = {"list": LeadFilterSerializer}

    def get_queryset(self):
        if self.action == "list":
            filters = validated_input(LeadFilterSerializer, self.request.query_params)
            since = {name: filters.pop(name, None) for name in ("created_since", "updated_since")}
            return since_filters(selectors.lead_list(tenant=self.tenant, **filters), since)
        return super().get_queryset()

    def perform_destroy(self, instance: Lead) -> None:
        services.lead_delete(lead=instance)


@extend_schema_view(
    list=extend_schema(summary="List contacts", parameters=[ContactFilterSerializer]),
    create=extend_schema(summary="Create a contact"),
    retrieve=extend_schema(summary="Get a contact"),
    update=extend_schema(summary="Replace a contact's fields"),
    partial_update=extend_schema(summary="Update a contact"),
    destroy=extend_schema(summary="Delete a contact (refused while it is in a running campaign)",
                          responses={204: None, 409: OpenApiResponse(description="Still in a running campaign")}),
)
class ContactViewSet(ChangeFeedMixin, TenantScopedViewMixin, viewsets.ModelViewSet):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    query_serializers = {"list": ContactFilterSerializer}

    def get_queryset(self):
        if self.action == "list":
            filters = _contact_filters(self.request)
            since = {name: filters.pop(name, None) for name in ("created_since", "updated_since")}
            return since_filters(selectors.contact_list(tenant=self.tenant, **filters), since)
        return super().get_queryset()

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        instance = args[0] if args else kwargs.get("instance")
        if instance is not None:
            contacts = instance if isinstance(instance, list) else [instance]
            # One bulk compliance lookup per page: `is_unsubscribed` never costs a query per contact.
            serializer.context["block_reasons"] = selectors.contacts_block_reasons(
                tenant_id=self.tenant.pk, contacts=contacts
            )
        return serializer

    def perform_update(self, serializer) -> None:
        contact = serializer.save()
        serializer.context["block_reasons"] = selectors.contacts_block_reasons(
            tenant_id=self.tenant.pk, contacts=[contact]
        )

    def perform_create(self, serializer) -> None:
        self.perform_update(serializer)

    def perform_destroy(self, instance: Contact) -> None:
        services.contact_delete(contact=instance)


def _contact_filters(request: Request) -> dict:
    filters = dict(validated_input(ContactFilterSerializer, request.query_params))
    if "lead" in filters:
        filters["lead_id"] = filters.pop("lead")
    return filters


@extend_schema_view(
    list=extend_schema(summary="List CSV imports", parameters=[ImportJobFilterSerializer]),
    retrieve=extend_schema(summary="Get an import with its per-row errors", responses=ImportJobDetailSerializer),
)
class ImportJobViewSet(TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                       viewsets.GenericViewSet):
    """Bulk CSV import of leads and contacts, run asynchronously with a per-row error report."""

    queryset = ImportJob.objects.defer("content")
    serializer_class = ImportJobSerializer
    query_serializers = {"list": ImportJobFilterSerializer}
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        if self.action == "list":
            # The list never reads the stored file or the error report.
            return selectors.import_job_list(
                tenant=self.tenant, **validated_input(ImportJobFilterSerializer, self.request.query_params)
            ).defer("content", "errors")
        return super().get_queryset()

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ImportJobDetailSerializer
        return ImportJobSerializer

    @extend_schema(
        summary="Upload a CSV of leads and contacts (imported in the background)",
        request={"multipart/form-data": ImportJobCreateSerializer},
        responses={202: ImportJobSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = ImportJobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        ctx = self.tenant_ctx
        if upload.size is not None and upload.size > imports.import_max_bytes():
            raise ApplicationError(f"The file is larger than {imports.import_max_bytes()} bytes.", field="file")
        job = imports.import_job_create(tenant=ctx.tenant, content=upload.read(), filename=upload.name or "",
                                         created_by=ctx.user, actor_label=ctx.actor_label)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
