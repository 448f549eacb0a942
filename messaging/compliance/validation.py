"""Checks shared by the compliance modules: which channels take an opt-out, and a tenant given as a row or an id."""
from __future__ import annotations

from outreach.channels import ADDRESS_CHANNELS
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant


def tenant_id_of(tenant: Tenant | int) -> int:
    """`tenant` arguments accept a Tenant or its id, so that callers holding only ids (webhook processing)
    need no extra query."""
    return tenant if isinstance(tenant, int) else tenant.pk


def require_address_channel(channel: str) -> None:
    """Opt-outs and unsubscribe links name a channel one sends on (email, sms), never a whole domain."""
    if channel not in ADDRESS_CHANNELS:
        raise ApplicationError(
            f"Unknown channel {channel!r}; choose one of {', '.join(ADDRESS_CHANNELS)}.", field="channel"
        )
