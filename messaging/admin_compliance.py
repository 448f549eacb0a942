"""Admin extras for the do-not-contact list: CSV import into a tenant and CSV export of a tenant.

Wired by mixing `ComplianceAdminMixin` into the CommunicationSuppression ModelAdmin (messaging/admin.py):
it adds two admin URLs and buttons on the changelist. The views only parse the form and call the service
(`suppressions_import_csv`) or the selector (`do_not_contact_export_rows`).
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from messaging.compliance.do_not_contact import (
    MAX_IMPORT_BYTES,
    do_not_contact_export_rows,
    suppressions_import_csv,
)
from outreach import clock
from outreach.csv_safety import csv_lines
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant
from outreach.tenancy.services import audit_record

MAX_ERRORS_SHOWN = 50


class DoNotContactImportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"))
    file = forms.FileField(
        help_text="CSV, UTF-8. Either a header with value/email/domain/phone (optional channel, detail) or one "
                  "address or domain per line. Addresses become manual suppressions, domains do-not-contact "
                  "domains. Bad rows are listed and skipped.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
        return upload


class DoNotContactExportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"))
    include_expired = forms.BooleanField(required=False, help_text="Also expired (soft-bounce) suppressions")


def do_not_contact_import_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    request.current_app = model_admin.admin_site.name
    report = None
    if request.method == "POST":
        form = DoNotContactImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                report = suppressions_import_csv(tenant=form.cleaned_data["tenant"], file=form.cleaned_data["file"],
                                                 actor=request.user, actor_label=request.user.get_username())
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                level = messages.WARNING if report.errors else messages.SUCCESS
                model_admin.message_user(
                    request,
                    f"Imported {report.suppressed_addresses} address(es) and {report.suppressed_domains} domain(s) "
                    f"from {report.rows} row(s); {len(report.errors)} row(s) rejected.",
                    level,
                )
                if not report.errors:
                    return HttpResponseRedirect(reverse("admin:messaging_communicationsuppression_changelist"))
    else:
        form = DoNotContactImportForm()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Import a do-not-contact list",
        "form": form,
        "report": report,
        "errors_shown": report.errors[:MAX_ERRORS_SHOWN] if report else [],
        "errors_hidden": max(0, len(report.errors) - MAX_ERRORS_SHOWN) if report else 0,
    }
    return TemplateResponse(request, "admin/messaging/do_not_contact_import.html", context)


def do_not_contact_export_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    request.current_app = model_admin.admin_site.name
    form = DoNotContactExportForm(request.GET or None)
    if not form.is_valid():
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": "Export a do-not-contact list",
            "form": form,
        }
        return TemplateResponse(request, "admin/messaging/do_not_contact_export.html", context)
    tenant = form.cleaned_data["tenant"]
    audit_record(tenant=tenant, actor=request.user, actor_label=request.user.get_username(),
                 action="suppression.export", detail={"include_expired": form.cleaned_data["include_expired"]})
    rows = do_not_contact_export_rows(tenant=tenant, include_expired=form.cleaned_data["include_expired"])
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = clock.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="do-not-contact-{tenant.slug}-{stamp}.csv"'
    return response


class ComplianceAdminMixin:
    """Adds /import-do-not-contact/ and /export-do-not-contact/ to a ModelAdmin and buttons to its changelist."""

    change_list_template = "admin/messaging/do_not_contact_change_list.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        extra = [
            path("import-do-not-contact/", wrap(lambda request: do_not_contact_import_view(self, request)),
                 name="messaging_do_not_contact_import"),
            path("export-do-not-contact/", wrap(lambda request: do_not_contact_export_view(self, request)),
                 name="messaging_do_not_contact_export"),
        ]
        return extra + super().get_urls()
