"""Leads, contacts and CSV imports over the API: input checks here, writes in contacts.services."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts import services
from contacts.models import Contact, ImportJob, Lead
from outreach.addresses import normalise_optional_domain
from outreach.errors import ApplicationError
from outreach.tenancy.api import ChangeFeedFilterSerializer, StrictFieldsMixin, TenantScopedPrimaryKeyRelatedField


class LeadSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                 help_text="Company name; defaults to the domain when empty")
    domain = serializers.CharField(max_length=253, required=False, allow_blank=True,
                                   help_text="Company domain; a URL is reduced to its host (www. dropped)")

    class Meta:
        model = Lead
        fields = ["id", "name", "domain", "website_text", "notes", "analysis", "analysis_status",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "analysis", "analysis_status", "created_at", "updated_at"]

    def validate_domain(self, value: str) -> str:
        try:
            return normalise_optional_domain(value)
        except ApplicationError as exc:
            raise serializers.ValidationError(exc.message) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        name = attrs.get("name", self.instance.name if self.instance else "")
        domain = attrs.get("domain", self.instance.domain if self.instance else "")
        if not (name or "").strip() and not domain:
            raise serializers.ValidationError({"name": "A lead needs a name or a domain."})
        if self.instance is not None and "name" in attrs and not attrs["name"].strip():
            raise serializers.ValidationError({"name": "A lead needs a name."})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Lead:
        return services.lead_create(tenant=self.context["tenant"], **validated_data)

    def update(self, instance: Lead, validated_data: dict[str, Any]) -> Lead:
        return services.lead_update(lead=instance, data=validated_data)


class LeadFilterSerializer(ChangeFeedFilterSerializer):
    domain = serializers.CharField(required=False, max_length=253)
    q = serializers.CharField(required=False, max_length=200, help_text="Part of the name or domain")
    analysis_status = serializers.ChoiceField(choices=Lead.AnalysisStatus.choices, required=False)


class ContactSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    lead = TenantScopedPrimaryKeyRelatedField(queryset=Lead.objects.all(), required=False, allow_null=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True,
                                  help_text="Stored lower-cased; one contact per address in a tenant")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True,
                                  help_text="Stored in E.164 (+4915112345678)")
    is_unsubscribed = serializers.SerializerMethodField(
        help_text="The address opted out: imported and kept, but never written to")
    send_block_reason = serializers.SerializerMethodField(
        help_text="Why nothing may be sent to this contact now (unsubscribed, suppressed:<reason>), or null")

    class Meta:
        model = Contact
        fields = ["id", "lead", "first_name", "last_name", "title", "email", "phone", "timezone", "language",
                  "is_unsubscribed", "send_block_reason", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def _reason(self, obj: Contact) -> str | None:
        return self.context.get("block_reasons", {}).get(obj.pk)

    def get_is_unsubscribed(self, obj: Contact) -> bool:
        return self._reason(obj) == "unsubscribed"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_send_block_reason(self, obj: Contact) -> str | None:
        return self._reason(obj)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fields = {name: attrs[name] for name in services.CONTACT_FIELDS if name in attrs}
        if self.instance is not None:
            # A partial update still has to leave the contact reachable on some channel.
            fields = {"email": self.instance.email, "phone": self.instance.phone} | fields
        cleaned, problems = services.contact_fields_clean(fields)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs | {name: cleaned[name] for name in cleaned if name in attrs}

    def create(self, validated_data: dict[str, Any]) -> Contact:
        return services.contact_create(tenant=self.context["tenant"], **validated_data)

    def update(self, instance: Contact, validated_data: dict[str, Any]) -> Contact:
        return services.contact_update(contact=instance, data=validated_data)


class ContactFilterSerializer(ChangeFeedFilterSerializer):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    email = serializers.CharField(required=False, max_length=254)
    q = serializers.CharField(required=False, max_length=200, help_text="Part of a name, email or title")


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Line number in the file (the header is line 1)")
    field = serializers.CharField(help_text="Column at fault, empty when the whole row failed")
    message = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = ["id", "status", "filename", "total_rows", "processed_rows", "imported_rows", "error_rows",
                  "unsubscribed_rows", "leads_created", "failure", "actor_label", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = fields


class ImportJobDetailSerializer(ImportJobSerializer):
    errors = ImportRowErrorSerializer(many=True, read_only=True)

    class Meta(ImportJobSerializer.Meta):
        fields = [*ImportJobSerializer.Meta.fields, "errors"]
        read_only_fields = fields


class ImportJobCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField(
        help_text="UTF-8 CSV with a header row. Columns: company, domain, first_name, last_name, title, "
                  "email, phone, timezone, language (each row needs an email or a phone)"
    )


class ImportJobFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ImportJob.Status.choices, required=False)
