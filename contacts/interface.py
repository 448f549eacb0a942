"""What other apps may use of contacts (docs/internal-interfaces.md#contacts).

Everything not named here is private to contacts. Higher apps fill the extension points below in their
AppConfig.ready(); contacts calls them without importing those apps.
"""
from __future__ import annotations

from contacts.analysis import analysis_fallback, lead_analyse
from contacts.models import Contact, Lead

__all__ = ["Contact", "Lead", "analysis_fallback", "lead_analyse"]
