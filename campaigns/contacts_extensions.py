"""What campaigns provides to contacts through contacts.interface's extension points (wired in apps.py).

contacts sits below campaigns and never imports it; it calls these through the extension points it
declares: may a contact or lead be deleted (`contacts_in_running_campaigns`), which offers is a lead being
approached with (`lead_offers`), and the listener told when leads were analysed (`leads_analysed_queue_plans`).

After a lead is analysed, every pending contact campaign of its contacts gets a plan job on the
`campaign_creation` queue. Staggered: ids go out in chunks of PLAN_JOB_CHUNK with a countdown that grows
by PLAN_JOB_STAGGER_SECONDS per chunk, capped at PLAN_JOB_MAX_COUNTDOWN_SECONDS. A countdown of seconds
is fine for a Redis broker (architecture rule 1 is about long timers, which sit in worker memory); the
stagger only smooths the burst a 100-lead batch would otherwise throw at the AI at once. The real
protection of the other tenants is the per-tenant cap in the AI client, which defers rather than drops.
"""
from __future__ import annotations

from collections.abc import Sequence

from campaigns.models import Campaign, ContactCampaign
from contacts import interface as contacts_interface
from outreach.publishing import publish_after_commit
from outreach.queues import TaskName

PLAN_JOB_CHUNK = 20
PLAN_JOB_STAGGER_SECONDS = 2
PLAN_JOB_MAX_COUNTDOWN_SECONDS = 120


def contacts_in_running_campaigns(*, tenant_id: int, contact_ids: Sequence[int] | None = None,
                                  lead_id: int | None = None) -> bool:
    """Is any of these contacts (or any contact of this lead) in a contact campaign that is not final?"""
    if contact_ids is None and lead_id is None:
        raise TypeError("contacts_in_running_campaigns needs contact_ids or lead_id")
    running = ContactCampaign.objects.filter(tenant_id=tenant_id, status__in=ContactCampaign.LIVE_STATUSES)
    if contact_ids is not None:
        running = running.filter(contact_id__in=list(contact_ids))
    if lead_id is not None:
        running = running.filter(contact__lead_id=lead_id)
    return running.exists()


def lead_offers(*, tenant_id: int, lead_id: int) -> list[str]:
    """The offers this lead is being approached with: its contacts' campaigns, else the tenant's latest."""
    offers = list(
        Campaign.objects.filter(tenant_id=tenant_id, contact_campaigns__contact__lead_id=lead_id)
        .exclude(offer="").values_list("offer", flat=True).distinct()[:3]
    )
    if not offers:
        offers = list(Campaign.objects.filter(tenant_id=tenant_id).exclude(offer="")
                      .order_by("-created_at").values_list("offer", flat=True)[:1])
    return offers


def pending_contact_campaign_ids(*, lead_ids: Sequence[int]) -> list[int]:
    """Contact campaigns of these leads' contacts that still wait for a plan."""
    return list(
        ContactCampaign.objects.filter(contact__lead_id__in=list(lead_ids), status=ContactCampaign.Status.PENDING,
                                       current_plan_version__isnull=True)
        .order_by("id").values_list("id", flat=True)
    )


def plan_jobs_enqueue(*, contact_campaign_ids: list[int]) -> int:
    """Queue plan generation in chunks, staggered by a few seconds each (see the module docstring).

    Enqueued after commit (a broker outage is logged; the stale-generation sweep publishes them again).
    Returns the number of messages sent."""
    chunks = [contact_campaign_ids[i:i + PLAN_JOB_CHUNK] for i in range(0, len(contact_campaign_ids), PLAN_JOB_CHUNK)]
    for index, chunk in enumerate(chunks):
        countdown = min(index * PLAN_JOB_STAGGER_SECONDS, PLAN_JOB_MAX_COUNTDOWN_SECONDS)
        publish_after_commit(TaskName.GENERATE_PLANS, args=[chunk], countdown=countdown or None)
    return len(chunks)


def leads_analysed_queue_plans(*, lead_ids: Sequence[int]) -> list[int]:
    """Listener of contacts' `leads_analysed`: queue plan jobs for the pending enrolments of these leads.

    Returns the contact campaign ids queued."""
    ids = pending_contact_campaign_ids(lead_ids=lead_ids)
    if ids:
        plan_jobs_enqueue(contact_campaign_ids=ids)
    return ids


def connect() -> None:
    """Fill contacts' extension points (CampaignsConfig.ready)."""
    contacts_interface.contacts_in_running_campaigns.provide(contacts_in_running_campaigns)
    contacts_interface.lead_offers.provide(lead_offers)
    contacts_interface.leads_analysed.connect(leads_analysed_queue_plans)
