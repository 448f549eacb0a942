"""Campaign brief writes the API needs and campaigns.services does not offer (creating and editing a brief).

Everything that moves contacts (enrol, pause, resume, cancel, events) goes through campaigns.services.
"""
from __future__ import annotations

from typing import Any

from campaigns.models import Campaign
from messaging.interface import EmailSenderIdentity
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant

BRIEF_FIELDS = ("name", "goal", "offer", "ai_instructions", "sender_identity", "allowed_link_domains")


def _check_sender(*, tenant_id: int, sender_identity: EmailSenderIdentity | None) -> None:
    if sender_identity is not None and sender_identity.tenant_id != tenant_id:
        raise ApplicationError("Unknown sender identity.", field="sender_identity")


def campaign_create(*, tenant: Tenant, name: str, goal: str = "", offer: str = "", ai_instructions: str = "",
                    sender_identity: EmailSenderIdentity | None = None,
                    allowed_link_domains: list[str] | None = None,
                    status: str = Campaign.Status.ACTIVE) -> Campaign:
    """A new brief. Active by default, so contacts enrolled next start as soon as their plan is written;
    a draft holds every send until it is resumed."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A campaign needs a name.", field="name")
    if status not in (Campaign.Status.ACTIVE, Campaign.Status.DRAFT):
        raise ApplicationError("A new campaign is active or draft.", field="status")
    _check_sender(tenant_id=tenant.pk, sender_identity=sender_identity)
    return Campaign.objects.create(
        tenant=tenant, name=name, goal=goal, offer=offer, ai_instructions=ai_instructions,
        sender_identity=sender_identity, allowed_link_domains=list(allowed_link_domains or []), status=status,
    )


def campaign_update(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Edit the brief. It shapes plans written from now on; plans already written keep their copy."""
    changed = []
    for key in BRIEF_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if key == "name":
            value = (value or "").strip()
            if not value:
                raise ApplicationError("A campaign needs a name.", field="name")
        if key == "sender_identity":
            _check_sender(tenant_id=campaign.tenant_id, sender_identity=value)
        setattr(campaign, key, value)
        changed.append(key)
    if changed:
        campaign.save(update_fields=[*changed, "updated_at"])
    return campaign
