"""Per-tenant reply addresses: reply+<tenant id>-<HMAC>@INBOUND_REPLY_DOMAIN, issued by the system.

The HMAC (SECRET_KEY, 96 bits) makes the address unguessable: knowing tenant 7's address tells nothing of
tenant 8's, and a forged token names no tenant. A reply is matched to the tenant its token names first
(messaging.inbound.matching); a tenant never chooses its reply address (messaging.sendgrid.identities).
"""
from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

_TOKEN = re.compile(r"^reply\+(?P<tenant>[0-9]{1,18})-(?P<mac>[0-9a-f]{24})@(?P<domain>[^@\s]+)$")


def _mac(tenant_id: int) -> str:
    key = f"{settings.SECRET_KEY}|inbound-reply-address".encode()
    return hmac.new(key, str(int(tenant_id)).encode(), hashlib.sha256).hexdigest()[:24]


def reply_addresses_enabled() -> bool:
    return bool(settings.INBOUND_REPLY_DOMAIN)


def tenant_reply_address(*, tenant_id: int) -> str:
    """The tenant's reply address ("" when INBOUND_REPLY_DOMAIN is not set)."""
    if not settings.INBOUND_REPLY_DOMAIN:
        return ""
    return f"reply+{int(tenant_id)}-{_mac(tenant_id)}@{settings.INBOUND_REPLY_DOMAIN}"


def is_inbound_domain_address(address: str) -> bool:
    domain = settings.INBOUND_REPLY_DOMAIN
    value = (address or "").strip().lower()
    return bool(domain) and (value.endswith("@" + domain) or value.endswith("." + domain))


def reply_address_tenant_id(address: str) -> int | None:
    """The tenant a reply address's token names, or None (not a reply address, other domain, bad MAC)."""
    match = _TOKEN.match((address or "").strip().lower())
    if match is None or match.group("domain") != settings.INBOUND_REPLY_DOMAIN:
        return None
    tenant_id = int(match.group("tenant"))
    return tenant_id if hmac.compare_digest(match.group("mac"), _mac(tenant_id)) else None
