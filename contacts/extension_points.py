"""The extension points contacts declares for higher apps (re-exported, and documented, by contacts.interface).

A leaf module: contacts' own services and analysis call these, and contacts.interface re-exports contacts'
analysis, so declaring them in the interface itself would make an import cycle.
"""
from __future__ import annotations

from collections.abc import Callable

from outreach.extensions import ExtensionPoint, Listeners

# --- extension points (provided by higher apps) ----------------------------------------------------------

# campaigns: is any of these contacts (or any contact of this lead) in a campaign that is not final?
# Called as contacts_in_running_campaigns(tenant_id=..., contact_ids=[...] | None, lead_id=... | None) -> bool.
# Deleting a lead or contact is refused while it is true (nothing is left half-sent).
contacts_in_running_campaigns: ExtensionPoint[Callable[..., bool]] = ExtensionPoint(
    "contacts.contacts_in_running_campaigns")

# campaigns: the offers a lead is being approached with (its contacts' campaigns, else the tenant's latest),
# for the lead analysis. Called as lead_offers(tenant_id=..., lead_id=...) -> list[str].
lead_offers: ExtensionPoint[Callable[..., list[str]]] = ExtensionPoint(
    "contacts.lead_offers", default=lambda **_: [])

# campaigns: leads were analysed; each listener returns the contact campaign ids it queued plan work for.
# Sent as leads_analysed.send(lead_ids=[...]) -> list[list[int]].
leads_analysed: Listeners[Callable[..., list[int]]] = Listeners("contacts.leads_analysed")

# messaging: why each address may not be contacted (opt-outs, suppressions); free addresses are absent.
# Called as address_block_reasons(tenant_id=..., channel=..., values=[...]) -> dict[value, reason].
address_block_reasons: ExtensionPoint[Callable[..., dict[str, str]]] = ExtensionPoint(
    "contacts.address_block_reasons")
