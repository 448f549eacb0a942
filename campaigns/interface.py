"""What other apps may use of campaigns (docs/internal-interfaces/campaigns.md).

Everything not named here is private to campaigns.
"""
from __future__ import annotations

from campaigns.engine import EngineEvent
from campaigns.holds import (
    HELD_SEND_SQL,
    SendHolds,
    contact_campaign_send_allowed_sql,
    send_allowed_sql,
    send_hold_reason,
    send_holds,
)
from campaigns.models import Campaign, ContactCampaign
from campaigns.scheduling import send_time_allowed
from campaigns.services import (
    contact_campaign_handle_event,
    contact_campaigns_handle_events,
    contact_campaigns_stop_for_address,
    send_action_reschedule,
)
from campaigns.services.outbox import OUTBOX_CANCELED, OUTBOX_COLUMNS, OUTBOX_QUEUED, outbox_dedupe_key

# EngineEvent: an event for the engine (type, occurred_at, optional node/visit, detail); frozen.
# contact_campaign_handle_event(*, contact_campaign_id, event) -> HandleResult: one event, locked, idempotent.
# contact_campaigns_handle_events(*, items=[(contact_campaign_id, EngineEvent), ...]) -> [HandleResult]: many
#   events, in input order per contact campaign, a fixed number of statements per 1,000 contact campaigns.
# contact_campaigns_stop_for_address(*, tenant_id, channel, value, reason, event_type) -> int: stop every live
#   contact campaign reaching an address (an opt-out, a suppression); returns how many stopped.
# send_action_reschedule(*, outbound_message_id, not_before, reason) -> ScheduledAction | None: re-arm the send
#   of a message back in `queued`, or cancel it when its node visit is gone; never sends late.
# Campaign, ContactCampaign: the models, for reads and foreign keys (write only through the functions above).
# send_hold_reason(...) -> str | None / send_allowed_sql(...) -> str: the held-send rule (campaigns.holds) for
#   one message in Python, and as the WHERE fragment of a send's last re-check;
#   contact_campaign_send_allowed_sql(...) adds the contact campaign's part (active, still at the node visit).
# send_holds() -> SendHolds, HELD_SEND_SQL: the same rule as a snapshot for scheduled_actions rows.
# send_time_allowed(*, plan, instant) -> bool: the plan's quiet hours and send days allow a send at `instant`
#   (delivery's send-time check; a held send is re-timed to the next allowed moment by send_action_reschedule).
# OUTBOX_*, outbox_dedupe_key: the outbox table contract (what campaigns writes into outbound_messages).

__all__ = [
    "HELD_SEND_SQL",
    "OUTBOX_CANCELED",
    "OUTBOX_COLUMNS",
    "OUTBOX_QUEUED",
    "Campaign",
    "ContactCampaign",
    "EngineEvent",
    "SendHolds",
    "contact_campaign_handle_event",
    "contact_campaigns_handle_events",
    "contact_campaigns_stop_for_address",
    "outbox_dedupe_key",
    "send_action_reschedule",
    "contact_campaign_send_allowed_sql",
    "send_allowed_sql",
    "send_hold_reason",
    "send_holds",
    "send_time_allowed",
]
