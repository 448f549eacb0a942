"""Tenancy reads."""
from __future__ import annotations

from django.conf import settings

from outreach.tenancy.models import ApiKey, GlobalSendingSwitch, Tenant
from outreach.tenancy.services import hash_api_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("tenant")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def global_sending_stopped() -> bool:
    """True while the emergency stop is on, from the setting or the operator's DB switch."""
    if settings.OUTREACH_SENDING_STOPPED:
        return True
    return GlobalSendingSwitch.objects.filter(id=1, sending_stopped=True).exists()


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()
