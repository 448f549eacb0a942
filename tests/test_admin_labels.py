"""The base layer's models read as English in the admin index (verbose_name_plural)."""
from __future__ import annotations

from outreach.ai.models import AICall
from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, Tenant, TenantMembership


def test_the_base_layer_models_have_english_plurals():
    labels = {model.__name__: str(model._meta.verbose_name_plural) for model in
              (Tenant, TenantMembership, ApiKey, GlobalSendingSwitch, AuditEntry, AICall)}
    assert labels == {
        "Tenant": "tenants",
        "TenantMembership": "tenant memberships",
        "ApiKey": "API keys",
        "GlobalSendingSwitch": "global sending switches",
        "AuditEntry": "audit entries",
        "AICall": "AI calls",
    }
