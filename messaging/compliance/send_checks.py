"""The send-time check: may this address be contacted now, and if not, why.

Every send path asks here (delivery before each batch, the engine's preflight, contacts' address status),
so an opt-out or a suppression recorded anywhere blocks every later mail.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason
from outreach import clock
from outreach.addresses import InvalidAddress, normalise_address
from outreach.channels import ADDRESS_CHANNELS, CHANNEL_EMAIL, CHANNEL_EMAIL_DOMAIN
from outreach.errors import ApplicationError

BLOCK_UNSUBSCRIBED = "unsubscribed"
BLOCK_INVALID_ADDRESS = "invalid_address"


def _normalised_or_blocked(channel: str, values: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(value -> normalised key, value -> "invalid_address") for the values as passed."""
    normalised_by_value: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for value in values:
        try:
            normalised_by_value[value] = normalise_address(channel, value)
        except InvalidAddress:
            blocked[value] = BLOCK_INVALID_ADDRESS
    return normalised_by_value, blocked


def _active_suppressions(*, tenant_id: int, channel: str, keys: set[str]) -> tuple[dict[str, str], set[str]]:
    """(address -> reason, suppressed domains) of the active rows for the keys or their domains (one query)."""
    domains = {key.rsplit("@", 1)[1] for key in keys} if channel == CHANNEL_EMAIL else set()
    match = Q(channel=channel, value__in=keys)
    if domains:
        match |= Q(channel=CHANNEL_EMAIL_DOMAIN, value__in=domains)
    suppressed: dict[str, str] = {}
    suppressed_domains: set[str] = set()
    rows = (CommunicationSuppression.objects.filter(tenant_id=tenant_id)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now())).filter(match)
            .values_list("channel", "value", "reason"))
    for row_channel, row_value, row_reason in rows:
        if row_channel == CHANNEL_EMAIL_DOMAIN:
            suppressed_domains.add(row_value)
        else:
            suppressed[row_value] = row_reason
    return suppressed, suppressed_domains


def send_block_reasons(*, tenant_id: int, channel: str, values: Iterable[str]) -> dict[str, str]:
    """Why each blocked address may not be contacted; addresses free to contact are absent.

    Keys are the values exactly as passed. Two queries whatever the number of values (none for an empty
    list): unsubscribes, then suppressions of the addresses or their domains (expired rows ignored).
    Reasons: "unsubscribed", "suppressed:<reason>", "suppressed:domain", "invalid_address".
    """
    if channel not in ADDRESS_CHANNELS:
        raise ApplicationError(f"Unknown channel {channel!r}.", field="channel")
    normalised_by_value, blocked = _normalised_or_blocked(channel, list(dict.fromkeys(values)))
    if not normalised_by_value:
        return blocked
    keys = set(normalised_by_value.values())
    unsubscribed = set(
        ContactUnsubscribe.objects.filter(tenant_id=tenant_id, channel=channel, channel_value__in=keys)
        .values_list("channel_value", flat=True)
    )
    suppressed, suppressed_domains = _active_suppressions(tenant_id=tenant_id, channel=channel, keys=keys)
    for value, key in normalised_by_value.items():
        if key in unsubscribed:
            blocked[value] = BLOCK_UNSUBSCRIBED
        elif key in suppressed:
            blocked[value] = f"suppressed:{suppressed[key]}"
        elif channel == CHANNEL_EMAIL and key.rsplit("@", 1)[1] in suppressed_domains:
            blocked[value] = f"suppressed:{SuppressionReason.DOMAIN}"
    return blocked


def send_block_reason(*, tenant_id: int, channel: str, value: str) -> str | None:
    return send_block_reasons(tenant_id=tenant_id, channel=channel, values=[value]).get(value)
