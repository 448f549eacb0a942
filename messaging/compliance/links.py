"""Unsubscribe links: the signed token, the /unsubscribe URL, the List-Unsubscribe mailto and headers, and
recognising a mail sent to that mailto.

No login is needed to opt out: the signed token (or the HMAC tag in the mailto address) is the credential.
"""
from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from messaging.compliance.validation import require_address_channel, tenant_id_of
from outreach.addresses import InvalidAddress, normalise_address
from outreach.channels import ADDRESS_CHANNELS, CHANNEL_EMAIL, CHANNEL_SMS
from outreach.tenancy.models import Tenant

# Bumping the salt invalidates every unsubscribe link ever sent: never change it.
UNSUBSCRIBE_TOKEN_SALT = "messaging.unsubscribe.v1"
_MAILTO_HMAC_SALT = "messaging.unsubscribe.mailto.v1"
_MAILTO_LOCAL_PREFIX = "unsubscribe"
_CHANNEL_CODES = {CHANNEL_EMAIL: 1, CHANNEL_SMS: 2}
_CHANNELS_BY_CODE = {v: k for k, v in _CHANNEL_CODES.items()}
_TOKEN_IN_SUBJECT_RE = re.compile(r"unsubscribe\s+(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class UnsubscribeTarget:
    tenant_id: int
    channel: str
    value: str


def _mailto_domain() -> str:
    return settings.UNSUBSCRIBE_MAILTO_DOMAIN or (urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost")


# --------------------------------------------------------------------------- the signed token and URL


def unsubscribe_token(*, tenant: Tenant | int, channel: str, value: str) -> str:
    """A signed, non-expiring token naming (tenant, channel, address); altering any part breaks it."""
    require_address_channel(channel)
    payload = [tenant_id_of(tenant), channel, normalise_address(channel, value)]
    return signing.dumps(payload, salt=UNSUBSCRIBE_TOKEN_SALT, compress=True)


def unsubscribe_token_read(token: str) -> UnsubscribeTarget:
    """Verify a token; raises signing.BadSignature for anything tampered, truncated or malformed."""
    if not token or len(token) > 2000:
        raise signing.BadSignature("Missing or oversized token.")
    payload = signing.loads(token, salt=UNSUBSCRIBE_TOKEN_SALT)
    if (not isinstance(payload, list) or len(payload) != 3 or not isinstance(payload[0], int)
            or payload[1] not in ADDRESS_CHANNELS or not isinstance(payload[2], str)):
        raise signing.BadSignature("Token payload has the wrong shape.")
    return UnsubscribeTarget(tenant_id=payload[0], channel=payload[1], value=payload[2])


def unsubscribe_url(*, tenant: Tenant | int, channel: str, value: str) -> str:
    token = unsubscribe_token(tenant=tenant, channel=channel, value=value)
    return f"{settings.PUBLIC_BASE_URL}/unsubscribe?{urlencode({'token': token})}"


# --------------------------------------------------------------------------- the mailto address


def _mailto_mac(tenant_id: int, channel: str, value: str) -> bytes:
    return salted_hmac(_MAILTO_HMAC_SALT, f"{tenant_id}|{channel}|{value}", algorithm="sha256").digest()[:10]


def _mailto_tag(local_part: str) -> tuple[int, int, bytes] | None:
    """(tenant id, channel code, HMAC) from an `unsubscribe+<tag>` local part, else None. Checks nothing."""
    prefix, _, tag = local_part.partition("+")
    if prefix != _MAILTO_LOCAL_PREFIX or not tag:
        return None
    try:
        raw = base64.b32decode(tag.upper() + "=" * (-len(tag) % 8))
        tenant_id, code = struct.unpack(">QB", raw[:9])
    except (ValueError, struct.error):
        return None
    return tenant_id, code, raw[9:]


def unsubscribe_mailto_local_part(*, tenant: Tenant | int, channel: str, value: str) -> str:
    """`unsubscribe+<tag>`: the tag binds tenant, channel and an HMAC of the address, and stays short.

    An address cannot fit in a local part (64 octets at most, RFC 5321), and MTAs may change case, so
    the tag is lower-case base32 of (tenant id, channel code, 80-bit HMAC). The receiving side checks it
    against the mail's From address; the full signed token also travels in the subject for mail sent from
    another address (see unsubscribe_target_from_mail).
    """
    tenant_id = tenant_id_of(tenant)
    normalised = normalise_address(channel, value)
    raw = struct.pack(">QB", tenant_id, _CHANNEL_CODES[channel]) + _mailto_mac(tenant_id, channel, normalised)
    tag = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return f"{_MAILTO_LOCAL_PREFIX}+{tag}"


def unsubscribe_mailto(*, tenant: Tenant | int, channel: str, value: str) -> str:
    local = unsubscribe_mailto_local_part(tenant=tenant, channel=channel, value=value)
    token = unsubscribe_token(tenant=tenant, channel=channel, value=value)
    return f"mailto:{local}@{_mailto_domain()}?subject={quote('unsubscribe ' + token, safe='')}"


def list_unsubscribe_headers(*, tenant: Tenant | int, channel: str, value: str) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers for one recipient (Gmail and Yahoo require both for bulk mail)."""
    url = unsubscribe_url(tenant=tenant, channel=channel, value=value)
    mailto = unsubscribe_mailto(tenant=tenant, channel=channel, value=value)
    return {
        "List-Unsubscribe": f"<{url}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


# --------------------------------------------------------------------------- mail sent to the mailto


def unsubscribe_mailto_tenant_id(*, address: str) -> int | None:
    """The tenant id in an `unsubscribe+<tag>@<UNSUBSCRIBE_MAILTO_DOMAIN>` address, else None.

    The HMAC in the tag is NOT checked (that needs the subscriber's address, see
    unsubscribe_target_from_mail): this only tells which tenant a mail to the address concerns, e.g. for
    the inbound handler to route a mail written from an alias. Never treat it as proof of anything.
    """
    local, _, domain = (address or "").strip().strip("<>").lower().rpartition("@")
    if not local or domain != _mailto_domain().lower():
        return None
    tag = _mailto_tag(local)
    if tag is None:
        return None
    tenant_id, code, _ = tag
    return tenant_id if tenant_id > 0 and code in _CHANNELS_BY_CODE else None


def _target_from_mailto_address(address: str, from_address: str) -> UnsubscribeTarget | None:
    """The opt-out a `unsubscribe+<tag>@` recipient names, when its HMAC matches the From address."""
    tag = _mailto_tag((address or "").strip().strip("<>").rsplit("@", 1)[0].lower())
    if tag is None:
        return None
    tenant_id, code, mac = tag
    channel = _CHANNELS_BY_CODE.get(code)
    if channel is None:
        return None
    try:
        sender = normalise_address(channel, from_address)
    except InvalidAddress:
        return None
    if constant_time_compare(mac, _mailto_mac(tenant_id, channel, sender)):
        return UnsubscribeTarget(tenant_id=tenant_id, channel=channel, value=sender)
    return None


def unsubscribe_target_from_mail(*, to_addresses: Iterable[str], from_address: str,
                                 subject: str = "") -> UnsubscribeTarget | None:
    """Recognise a mail sent to our List-Unsubscribe mailto (for the inbound-mail handler).

    A valid signed token in the subject wins (works even when the person writes from an alias); otherwise a
    `unsubscribe+<tag>@` recipient whose HMAC matches the From address. None if it is not an unsubscribe.
    """
    found = _TOKEN_IN_SUBJECT_RE.search(subject or "")
    if found:
        try:
            return unsubscribe_token_read(found.group(1))
        except signing.BadSignature:
            pass
    for address in to_addresses:
        target = _target_from_mailto_address(address, from_address)
        if target is not None:
            return target
    return None
