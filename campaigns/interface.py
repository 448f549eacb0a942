"""What other apps may use of campaigns (docs/internal-interfaces.md#campaigns).

Everything not named here is private to campaigns.
"""
from __future__ import annotations

from campaigns.engine import EngineEvent
from campaigns.models import Campaign, ContactCampaign
from campaigns.services import (
    contact_campaign_handle_event,
    contact_campaigns_handle_events,
    contact_campaigns_stop_for_address,
    send_action_reschedule,
)

__all__ = [
    "Campaign",
    "ContactCampaign",
    "EngineEvent",
    "contact_campaign_handle_event",
    "contact_campaigns_handle_events",
    "contact_campaigns_stop_for_address",
    "send_action_reschedule",
]
