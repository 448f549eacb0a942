"""Operator controls: pause, resume and cancel one contact campaign or a whole campaign, audited.

A paused contact campaign keeps its timers and sends (held, not dropped) and still takes events: a reply
or an opt-out is never lost (docs/engine.md). A whole campaign is canceled in chunks, locked in id order.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from django.db import transaction
from rest_framework import status as http_status

from campaigns import engine
from campaigns.engine import Decision, TransitionRecord
from campaigns.models import Campaign, ContactCampaign, ScheduledAction
from campaigns.scheduling import next_send_time
from campaigns.services.locking import HANDLE_CHUNK, LIVE_STATUSES, LockedRow, lock_rows, locked_model, refreshed
from campaigns.services.work import Work, apply_one
from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.services import audit_record


def _audit(*, action: str, cc_or_campaign: Any, actor: Any, reason: str) -> None:
    audit_record(action=action, tenant=cc_or_campaign.tenant, actor=actor, target=cc_or_campaign,
                 detail={"reason": reason})


def _operator_record(row: LockedRow, now: dt.datetime, *, event: str, new_status: str, reason: str) -> Decision:
    new_state = replace(row.state, status=new_status)
    record = TransitionRecord(event=event, from_node_id=row.state.current_node_id,
                              to_node_id=row.state.current_node_id, node_visit=row.state.node_visit,
                              from_status=row.state.status, to_status=new_status, occurred_at=now, reason=reason)
    return Decision(new_state, [record], [], engine.UPDATED)


def contact_campaign_pause(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                           ) -> ContactCampaign:
    """Freeze one contact campaign: its timers and sends are held (kept, not dropped) until resumed.

    Events still arrive while paused: a reply or an opt-out is never lost (docs/engine.md).
    """
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        if cc.status == ContactCampaign.Status.PAUSED:
            return refreshed(contact_campaign)
        if cc.status != ContactCampaign.Status.ACTIVE:
            raise ApplicationError(f"Only an active contact campaign can be paused; this one is {cc.status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        apply_one(cc.pk, lambda row, now: _operator_record(row, now, event="paused",
                                                            new_status=ContactCampaign.Status.PAUSED, reason=reason))
        ScheduledAction.objects.filter(contact_campaign_id=cc.pk, status=ScheduledAction.Status.PENDING).update(
            status=ScheduledAction.Status.HELD)
        _audit(action="contact_campaign.pause", cc_or_campaign=cc, actor=actor, reason=reason)
    return refreshed(contact_campaign)


def contact_campaign_resume(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                            ) -> ContactCampaign:
    """Unfreeze: held sends are re-timed through next_send_time from now; held timers keep their due time
    (one that fell due during the pause fires on the next dispatcher tick)."""
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        if cc.status == ContactCampaign.Status.ACTIVE:
            return refreshed(contact_campaign)
        if cc.status != ContactCampaign.Status.PAUSED:
            raise ApplicationError(f"Only a paused contact campaign can be resumed; this one is {cc.status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        row, _ = apply_one(cc.pk, lambda row, now: _operator_record(
            row, now, event="resumed", new_status=ContactCampaign.Status.ACTIVE, reason=reason))
        now = clock.now()
        held = ScheduledAction.objects.filter(contact_campaign_id=cc.pk, status=ScheduledAction.Status.HELD)
        held.exclude(kind=ScheduledAction.Kind.SEND).update(status=ScheduledAction.Status.PENDING, claimed_at=None)
        for action in held.filter(kind=ScheduledAction.Kind.SEND):
            # Re-timed from now (or later: a not_before, or a due time still ahead) into an allowed slot.
            earliest = max(now, action.due_at, row.state.not_before or now)
            action.due_at = next_send_time(row.plan, earliest) if row.plan is not None else earliest
            action.status, action.claimed_at = ScheduledAction.Status.PENDING, None
            action.save(update_fields=["due_at", "status", "claimed_at"])
        _audit(action="contact_campaign.resume", cc_or_campaign=cc, actor=actor, reason=reason)
    return refreshed(contact_campaign)


def contact_campaign_cancel(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                            ) -> ContactCampaign:
    """End a contact campaign for good: pending actions and messages not yet sent are canceled."""
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        if cc.status in ContactCampaign.FINAL_STATUSES:
            return refreshed(contact_campaign)
        apply_one(cc.pk, lambda row, now: engine.operator_stop(
            row.state, now, status=engine.CANCELED, event="canceled", reason=reason or "canceled"))
        _audit(action="contact_campaign.cancel", cc_or_campaign=cc, actor=actor, reason=reason)
    return refreshed(contact_campaign)


def campaign_pause(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Hold every due send of the campaign (the dispatcher keeps them `held`); events are still handled."""
    return _campaign_set_status(campaign, Campaign.Status.PAUSED, actor, reason, allowed=(Campaign.Status.ACTIVE,))


def campaign_resume(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Activate (from paused or draft); the dispatcher releases held sends, re-timed, on its next tick."""
    return _campaign_set_status(campaign, Campaign.Status.ACTIVE, actor, reason,
                                allowed=(Campaign.Status.PAUSED, Campaign.Status.DRAFT))


def _campaign_set_status(campaign: Campaign, new_status: str, actor: Any, reason: str,
                         allowed: tuple[str, ...]) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == new_status:
            return locked
        if locked.status not in allowed:
            raise ApplicationError(f"This campaign is {locked.status}; it cannot become {new_status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        locked.status = new_status
        locked.save(update_fields=["status", "updated_at"])
        _audit(action=f"campaign.{'pause' if new_status == Campaign.Status.PAUSED else 'resume'}",
               cc_or_campaign=locked, actor=actor, reason=reason)
    campaign.status = new_status
    return locked


def campaign_cancel(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Cancel the campaign and every live enrolment (chunked, locked in id order); nothing more is sent."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == Campaign.Status.CANCELED:
            return locked
        locked.status = Campaign.Status.CANCELED
        locked.save(update_fields=["status", "updated_at"])
        _audit(action="campaign.cancel", cc_or_campaign=locked, actor=actor, reason=reason)
    ids = list(ContactCampaign.objects.filter(campaign_id=campaign.pk, status__in=LIVE_STATUSES)
               .order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), HANDLE_CHUNK):
        chunk = ids[start:start + HANDLE_CHUNK]
        with transaction.atomic():
            now = clock.now()
            rows = lock_rows(chunk)
            work = Work(now)
            for cc_id in chunk:
                row = rows.get(cc_id)
                if row is not None and row.state.status not in engine.FINAL_STATUSES:
                    work.apply(row, engine.operator_stop(row.state, now, status=engine.CANCELED, event="canceled",
                                                         reason=reason or "campaign canceled"))
            work.flush(rows)
    campaign.status = Campaign.Status.CANCELED
    return locked
