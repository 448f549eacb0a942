"""Tenants (sales teams), their members and roles, API keys, and operator switches."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from outreach.fields import ClockDateTimeField


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: str, required: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(required)]


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    sending_paused = models.BooleanField(
        default=False, help_text="Kill switch: while set, no message of this tenant is sent."
    )
    unsubscribe_redirect_url = models.URLField(
        blank=True, help_text="Optional page to show after an unsubscribe instead of ours."
    )
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenants"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantMembership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenant_memberships"
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="uniq_membership_tenant_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """A tenant API key. Only a SHA-256 of the secret is stored; the prefix is shown to identify it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = ClockDateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant}, {self.role})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class GlobalSendingSwitch(models.Model):
    """The global emergency stop, a single row (id=1) an operator flips in the admin."""

    sending_stopped = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    updated_at = ClockDateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "global_sending_switch"
        verbose_name = "global sending switch"
        verbose_name_plural = "global sending switches"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="global_switch_single_row")]

    def __str__(self) -> str:
        return "Sending STOPPED" if self.sending_stopped else "Sending allowed"


class AuditEntry(models.Model):
    """Append-only record of operator actions (pauses, stops, resubscribes)."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="API key prefix or system component")
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "audit_entries"
        ordering = ["-created_at"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_type}:{self.target_id}"


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` a tenant used on a POST: claimed before the work runs, the answer stored after.

    The unique (tenant, key) row is the lock: a concurrent duplicate cannot insert it, so only one request
    does the work. `status_code` is null while the first request is still running. Kept 24 h (pruned).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "idempotency_records"
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="uniq_idempotency_tenant_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
