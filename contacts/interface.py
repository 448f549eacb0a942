"""What other apps may use of contacts (docs/internal-interfaces/contacts-and-base.md).

Everything not named here is private to contacts. Higher apps fill the extension points below in their
AppConfig.ready(); contacts calls them without importing those apps.
"""
from __future__ import annotations

from contacts.analysis import analysis_fallback, lead_analyse
from contacts.extension_points import (
    address_block_reasons,
    contacts_in_running_campaigns,
    lead_offers,
    leads_analysed,
)
from contacts.models import Contact, Lead

# The extension points (declared in contacts.extension_points, provided by higher apps):
# contacts_in_running_campaigns, lead_offers (campaigns), leads_analysed (campaigns listens),
# address_block_reasons (messaging). Signatures and promises: contacts/extension_points.py.

__all__ = [
    "Contact",
    "Lead",
    "address_block_reasons",
    "analysis_fallback",
    "contacts_in_running_campaigns",
    "lead_analyse",
    "lead_offers",
    "leads_analysed",
]
