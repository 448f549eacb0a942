"""Operator console: tenants, members, API keys, the global stop, the audit trail.

Every switch that stops sending goes through a service so it leaves an audit entry.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from outreach.admin import ReadOnlyAdmin
from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, Tenant, TenantMembership
from outreach.tenancy.services import (
    api_key_create,
    api_key_revoke,
    global_sending_set_stopped,
    tenant_set_sending_paused,
)

ADMIN_REASON = "admin console"


class TenantMembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sending_paused", "created_at")
    list_filter = ("sending_paused",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    # Operators paste bare domains; assume https (Django 6's default) rather than http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("created_at",)
    inlines = (TenantMembershipInline,)
    actions = ("pause_sending", "resume_sending")

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # A tenant owns millions of rows: the admin's delete page would collect them all in memory.
        return False

    def save_model(self, request: HttpRequest, obj: Tenant, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "sending_paused" in form.changed_data:
            tenant_set_sending_paused(tenant=obj, paused=obj.sending_paused, actor=request.user,
                                      reason=ADMIN_REASON)

    @admin.action(description="Pause sending for the selected tenants")
    def pause_sending(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_paused(request, queryset, paused=True)

    @admin.action(description="Resume sending for the selected tenants")
    def resume_sending(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_paused(request, queryset, paused=False)

    def _set_paused(self, request: HttpRequest, queryset: QuerySet[Tenant], *, paused: bool) -> None:
        changed = [t for t in queryset if t.sending_paused != paused]
        for tenant in changed:
            tenant_set_sending_paused(tenant=tenant, paused=paused, actor=request.user, reason=ADMIN_REASON)
        verb = "paused" if paused else "resumed"
        self.message_user(request, f"Sending {verb} for {len(changed)} tenant(s).", messages.SUCCESS)


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
    """The emergency stop: one row (id=1). Every flip goes through the service and is audited."""

    list_display = ("__str__", "sending_stopped", "reason", "updated_at", "updated_by", "environment_stop")
    list_select_related = ("updated_by",)
    fields = ("sending_stopped", "reason", "updated_at", "updated_by", "environment_stop")
    readonly_fields = ("updated_at", "updated_by", "environment_stop")
    actions = ("stop_sending", "allow_sending")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The single row is created the first time an operator saves the switch.
        return super().has_add_permission(request) and not GlobalSendingSwitch.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: GlobalSendingSwitch | None = None) -> bool:
        return False

    @admin.display(boolean=True, description="stopped by OUTREACH_SENDING_STOPPED")
    def environment_stop(self, obj: GlobalSendingSwitch | None = None) -> bool:
        return bool(settings.OUTREACH_SENDING_STOPPED)

    def save_model(self, request: HttpRequest, obj: GlobalSendingSwitch, form: ModelForm, change: bool) -> None:
        switch = global_sending_set_stopped(stopped=obj.sending_stopped, actor=request.user, reason=obj.reason)
        obj.__dict__.update(switch.__dict__)

    @admin.action(description="STOP all sending (every tenant)")
    def stop_sending(self, request: HttpRequest, queryset: QuerySet[GlobalSendingSwitch]) -> None:
        global_sending_set_stopped(stopped=True, actor=request.user, reason=ADMIN_REASON)
        self.message_user(request, "All sending is stopped.", messages.WARNING)

    @admin.action(description="Allow sending again")
    def allow_sending(self, request: HttpRequest, queryset: QuerySet[GlobalSendingSwitch]) -> None:
        global_sending_set_stopped(stopped=False, actor=request.user, reason=ADMIN_REASON)
        self.message_user(request, "Sending is allowed again.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "tenant", "actor", "actor_label", "target_type", "target_id")
    list_filter = ("action", "target_type", "tenant")
    search_fields = ("action", "actor_label", "target_id", "actor__username")
    list_select_related = ("tenant", "actor")
    date_hierarchy = "created_at"
