"""Operator console: tenants, members, API keys, the global stop, the audit trail.

Every switch that stops sending goes through a service so it leaves an audit entry, and only from a
confirmation page (a POST form), never from a checkbox on an edit form.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from outreach.admin import ReadOnlyAdmin, Switch, SwitchesAdminMixin, confirm_page, global_stop_state
from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, IdempotencyRecord, Tenant, TenantMembership
from outreach.tenancy.services import (
    api_key_create,
    api_key_revoke,
    global_sending_set_stopped,
    tenant_set_sending_paused,
)

ADMIN_REASON = "admin console"

# The admin is the operator console; the project serves no public site for "View site" to open.
admin.site.site_header = "Outreach operator console"
admin.site.site_title = "Outreach console"
admin.site.index_title = "Operator console"
admin.site.site_url = None


class TenantMembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)


def _tenant_pause(tenant: Tenant, *, actor, reason: str) -> None:
    tenant_set_sending_paused(tenant=tenant, paused=True, actor=actor, reason=reason or ADMIN_REASON)


def _tenant_resume(tenant: Tenant, *, actor, reason: str) -> None:
    tenant_set_sending_paused(tenant=tenant, paused=False, actor=actor, reason=reason or ADMIN_REASON)


TENANT_SWITCHES = (
    Switch(name="pause_sending", label="Pause sending", done="paused", applies=lambda t: not t.sending_paused,
           run=_tenant_pause, skipped_note="already paused", danger=True,
           explanation="Nothing of this tenant is sent until it is resumed: due sends are held (kept, not "
                       "dropped); replies, opt-outs and other events are still processed."),
    Switch(name="resume_sending", label="Resume sending", done="resumed", applies=lambda t: t.sending_paused,
           run=_tenant_resume, skipped_note="not paused",
           explanation="Held sends are released on the dispatcher's next tick, re-timed into allowed hours."),
)


@admin.register(Tenant)
class TenantAdmin(SwitchesAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "sending_paused", "created_at")
    list_filter = ("sending_paused",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    # Operators paste bare domains; assume https (Django 6's default) rather than http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # The pause flag flips only through its confirmed, audited switch (the buttons above the form).
    readonly_fields = ("sending_paused", "created_at")
    inlines = (TenantMembershipInline,)
    switches = TENANT_SWITCHES

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # A tenant owns millions of rows: the admin's delete page would collect them all in memory.
        return False


@admin.register(TenantMembership)
class TenantMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name", "tenant__slug")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user",)
    readonly_fields = ("created_at",)


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued by ``api_key_create`` (the raw key is shown once) and revoked, never edited."""

    list_display = ("prefix", "name", "tenant", "role", "is_active", "created_at", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter, "role", "tenant")
    search_fields = ("prefix", "name", "tenant__name", "tenant__slug")
    list_select_related = ("tenant", "created_by")
    # key_hash is never a form field: it is derived from the secret, which we never hold.
    exclude = ("key_hash",)
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["tenant", "name", "role"]
        return ["prefix", "tenant", "name", "role", "created_by", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        # A key's tenant and role are fixed at issue: issue a new key rather than widen an old one.
        return ["prefix", "tenant", "role", "created_by", "created_at", "last_used_at", "revoked_at"]

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the row stays to explain past requests

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_create(tenant=obj.tenant, role=obj.role, name=obj.name, created_by=request.user)
        # Hand the admin the row the service created, so it logs and redirects to it.
        obj.__dict__.update(issued.api_key.__dict__)
        messages.warning(
            request,
            format_html(
                "Copy this API key now; it is shown only once and cannot be recovered: <code>{}</code>",
                issued.raw_key,
            ),
        )

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True).select_related("tenant"))
        for key in keys:
            api_key_revoke(api_key=key, actor=request.user)
        self.message_user(request, f"Revoked {len(keys)} API key(s).", messages.SUCCESS)


@admin.register(GlobalSendingSwitch)
class GlobalSendingSwitchAdmin(admin.ModelAdmin):
    """The emergency stop: one row (id=1), flipped only from its confirmation pages (``stop/``, ``resume/``,
    linked from the admin index), through the service, which audits."""

    list_display = ("__str__", "sending_stopped", "reason", "updated_at", "updated_by", "environment_stop")
    list_select_related = ("updated_by",)
    fields = ("sending_stopped", "reason", "updated_at", "updated_by", "environment_stop")
    readonly_fields = fields
    change_list_template = "admin/tenancy/globalsendingswitch/operator_change_list.html"
    change_form_template = "admin/tenancy/globalsendingswitch/operator_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the service creates the row the first time sending is stopped

    def has_change_permission(self, request: HttpRequest, obj: GlobalSendingSwitch | None = None) -> bool:
        return False  # no form: the stop/resume pages are the only way to flip it

    def has_delete_permission(self, request: HttpRequest, obj: GlobalSendingSwitch | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenancy.change_globalsendingswitch")

    @admin.display(boolean=True, description="stopped by OUTREACH_SENDING_STOPPED")
    def environment_stop(self, obj: GlobalSendingSwitch | None = None) -> bool:
        return bool(settings.OUTREACH_SENDING_STOPPED)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        own = [
            path("stop/", wrap(lambda request: self.set_stopped_view(request, stopped=True)),
                 name="tenancy_globalsendingswitch_stop"),
            path("resume/", wrap(lambda request: self.set_stopped_view(request, stopped=False)),
                 name="tenancy_globalsendingswitch_resume"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "global_stop": global_stop_state()})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "global_stop": global_stop_state()})

    def set_stopped_view(self, request: HttpRequest, *, stopped: bool) -> HttpResponse:
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if stopped:
            page = {"title": "Emergency stop: stop ALL sending", "question": "Stop all sending, for every tenant?",
                    "explanation": "Every due send of every tenant is held (kept, not dropped) until sending is "
                                   "allowed again; webhooks, replies and opt-outs are still processed.",
                    "submit_label": "Yes, stop all sending", "danger": True}
        else:
            page = {"title": "Allow sending again", "question": "Allow sending again, for every tenant?",
                    "explanation": "Held sends are released on the dispatcher's next tick, re-timed into allowed "
                                   "hours. Tenant, campaign and sender pauses still apply."
                                   + (" OUTREACH_SENDING_STOPPED is set in the environment: sending stays "
                                      "stopped until it is removed." if settings.OUTREACH_SENDING_STOPPED else ""),
                    "submit_label": "Yes, allow sending", "danger": False}
        if request.method != "POST":
            return confirm_page(request, model_admin=self, cancel_url=reverse("admin:index"), **page)
        global_sending_set_stopped(stopped=stopped, actor=request.user,
                                   reason=request.POST.get("reason", "").strip()[:300] or ADMIN_REASON)
        if stopped:
            self.message_user(request, "All sending is stopped.", messages.WARNING)
        else:
            self.message_user(request, "Sending is allowed again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:index"))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "tenant", "actor", "actor_label", "target_type", "target_id")
    list_filter = ("action", "target_type", "tenant")
    search_fields = ("action", "actor_label", "target_id", "actor__username")
    list_select_related = ("tenant", "actor")
    date_hierarchy = "created_at"


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    """Idempotency-Key answers kept 24 h: look up what a retried request was answered."""

    list_display = ("created_at", "tenant", "key", "method", "path", "status_code", "expires_at")
    list_filter = ("method", "status_code")
    search_fields = ("key", "path")
    list_select_related = ("tenant",)
