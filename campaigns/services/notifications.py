"""What the campaigns app tells the outside world when a unit of work commits: outgoing webhooks for booked
meetings and finished enrolments (outreach.webhooks_out), and a campaign's move to `completed` once its last
enrolment is final. Called by `Work.flush`, inside its transaction."""
from __future__ import annotations

from typing import Any

from campaigns.models import Campaign, ContactCampaign
from campaigns.services.locking import LockedRow
from outreach import clock
from outreach.webhooks_out.models import EventType
from outreach.webhooks_out.services import Emitted, emit_many

FINAL = {str(s) for s in ContactCampaign.FINAL_STATUSES}


def after_flush(*, transitions: list[dict[str, Any]], rows: dict[int, LockedRow]) -> None:
    events: list[Emitted] = []
    finished_campaigns: set[int] = set()
    for t in transitions:
        row = rows.get(t["contact_campaign_id"])
        if row is None:
            continue
        data = {"contact_campaign_id": row.id, "campaign_id": row.campaign_id, "contact_id": row.contact_id,
                "node_id": t["to_node_id"] or t["from_node_id"]}
        if t["event"] == "meeting_booked":
            events.append(Emitted(row.tenant_id, str(EventType.MEETING_BOOKED), data, t["occurred_at"]))
        if t["to_status"] in FINAL and t["to_status"] != t["from_status"]:
            events.append(Emitted(row.tenant_id, str(EventType.ENROLMENT_FINISHED),
                                  {**data, "status": t["to_status"], "reason": t["reason"] or t["event"]},
                                  t["occurred_at"]))
            finished_campaigns.add(row.campaign_id)
    emit_many(events)
    campaigns_complete_if_done(campaign_ids=finished_campaigns)


def campaigns_complete_if_done(*, campaign_ids: set[int]) -> list[int]:
    """Move active campaigns whose every enrolment is final to `completed` (one statement).

    Only active ones: a paused or draft campaign is an operator's decision, a canceled one is final.
    """
    if not campaign_ids:
        return []
    live = ContactCampaign.objects.filter(status__in=ContactCampaign.LIVE_STATUSES)
    done = (Campaign.objects.filter(pk__in=campaign_ids, status=Campaign.Status.ACTIVE)
            .exclude(pk__in=live.filter(campaign_id__in=campaign_ids).values("campaign_id")))
    ids = list(done.values_list("pk", flat=True))
    if ids:
        Campaign.objects.filter(pk__in=ids, status=Campaign.Status.ACTIVE).update(
            status=Campaign.Status.COMPLETED, updated_at=clock.now())
    return ids
