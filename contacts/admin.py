"""Operator console: leads, contacts and their addresses.

Contacts and channels run to millions of rows: exact-match search, raw-id foreign
keys, estimated counts (see outreach.admin.BigTableAdmin).
"""
from __future__ import annotations

from django.contrib import admin
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from contacts.models import Channel, Contact, ContactChannel, EmailValidationResult, ImportJob, Lead
from outreach.admin import (
    BigTableAdmin,
    OwnerDeletesHistoryMixin,
    ReadOnlyAdmin,
    TenantConsistentForm,
    static_choices_filter,
)


@admin.register(Lead)
class LeadAdmin(OwnerDeletesHistoryMixin, BigTableAdmin):
    list_display = ("name", "domain", "tenant", "analysis_status", "created_at")
    list_filter = ("analysis_status", "tenant")
    search_fields = ("domain__exact", "name__exact")
    list_select_related = ("tenant",)
    readonly_fields = ("created_at", "updated_at")


class ContactChannelInline(admin.TabularInline):
    model = ContactChannel
    extra = 0
    fields = ("channel", "value", "is_primary", "created_at")
    readonly_fields = ("created_at",)


class ContactForm(TenantConsistentForm):
    tenant_scoped_fields = ("lead",)


class ContactChannelForm(TenantConsistentForm):
    tenant_scoped_fields = ("contact",)


@admin.register(Contact)
class ContactAdmin(OwnerDeletesHistoryMixin, BigTableAdmin):
    form = ContactForm
    list_display = ("__str__", "email", "phone", "title", "lead", "tenant", "created_at")
    list_filter = ("tenant",)
    # Emails are stored lower-cased; search with the lower-cased address.
    search_fields = ("email__exact", "phone__exact", "last_name__exact")
    list_select_related = ("tenant", "lead")
    raw_id_fields = ("lead",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (ContactChannelInline,)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        # A channel added inline belongs to its contact's tenant (the inline does not show tenant).
        for inline_form in formset.forms:
            if inline_form.instance.tenant_id is None:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)


@admin.register(ContactChannel)
class ContactChannelAdmin(BigTableAdmin):
    form = ContactChannelForm
    list_display = ("value", "channel", "is_primary", "contact", "tenant", "created_at")
    list_filter = (static_choices_filter("channel", Channel.choices), "is_primary", "tenant")
    search_fields = ("value__exact",)
    list_select_related = ("contact", "tenant")
    raw_id_fields = ("contact",)
    readonly_fields = ("created_at",)


@admin.register(EmailValidationResult)
class EmailValidationResultAdmin(BigTableAdmin):
    list_display = ("email", "verdict", "score", "suggestion", "tenant", "validated_at")
    list_filter = ("verdict", "tenant")
    search_fields = ("email__exact",)
    list_select_related = ("tenant",)
    readonly_fields = ("validated_at",)


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """Written by the import task; an operator reads the per-row report, or deletes the upload (it holds PII)."""

    list_display = ("id", "filename", "tenant", "status", "total_rows", "processed_rows", "imported_rows",
                    "error_rows", "unsubscribed_rows", "actor_label", "created_at", "finished_at")
    list_filter = ("status", "tenant")
    search_fields = ("filename", "actor_label")
    list_select_related = ("tenant",)
    exclude = ("content",)
    readonly_fields = ("content_preview",)

    def get_readonly_fields(self, request: HttpRequest, obj: ImportJob | None = None) -> list[str]:
        return [name for name in super().get_readonly_fields(request, obj) if name != "content"]

    def has_delete_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    # An upload can be megabytes: show its head, not the whole file.
    @admin.display(description="content (first 5,000 characters)")
    def content_preview(self, obj: ImportJob) -> str:
        return obj.content[:5000]
