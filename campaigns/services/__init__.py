"""Campaign writes, one idea per module (the engine's thin shell; rules and choices: docs/engine.md).

Every service that changes a contact campaign locks its row (`locking`), runs the pure core
(campaigns.engine), and writes the new state, the transition records, the scheduled actions and the outbox
rows in one transaction (`work`, `outbox`); Celery work is enqueued after commit (outreach.publishing).

- `events`: the hot path (`contact_campaigns_handle_events`) and stops for an address
- `timers`: timeout / wait actions claimed by the dispatcher
- `plans`: plan versions, start, replace
- `controls`: operator pause / resume / cancel of one contact campaign or a whole campaign
- `enrolment`: contacts join a campaign
- `reschedule`: delivery's hook to re-arm a send
- `outbox`: the table contract with messaging's `outbound_messages`

Other apps use these only through campaigns.interface.
"""
from __future__ import annotations

from campaigns.dsl import PlanInvalid
from campaigns.services.controls import (
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    contact_campaign_cancel,
    contact_campaign_pause,
    contact_campaign_resume,
)
from campaigns.services.enrolment import campaign_enrol_contacts
from campaigns.services.events import (
    HandleResult,
    contact_campaign_handle_event,
    contact_campaigns_handle_events,
    contact_campaigns_stop_for_address,
)
from campaigns.services.locking import lock_rows as _lock
from campaigns.services.plans import contact_campaign_replace_plan, contact_campaign_start, contact_campaign_store_plan
from campaigns.services.reschedule import send_action_reschedule
from campaigns.services.timers import scheduled_actions_run
from campaigns.services.work import Work as _Work

__all__ = [
    "HandleResult", "PlanInvalid", "campaign_cancel", "campaign_enrol_contacts", "campaign_pause", "campaign_resume",
    "contact_campaign_cancel", "contact_campaign_handle_event", "contact_campaign_pause",
    "contact_campaign_replace_plan", "contact_campaign_resume", "contact_campaign_start",
    "contact_campaign_store_plan", "contact_campaigns_handle_events", "contact_campaigns_stop_for_address",
    "scheduled_actions_run", "send_action_reschedule",
    # The unit of work and the row lock, for the tests that drive them directly.
    "_Work", "_lock",
]
