"""Plan versions: store a validated plan, start a contact campaign on it, switch a running one to another.

A plan version is immutable; the same plan again returns the version already stored. Switching plans
follows docs/plan-dsl.md, "Versions".
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from rest_framework import status as http_status

from campaigns import engine
from campaigns.dsl import Plan, parse_plan, plan_hash
from campaigns.engine import Decision
from campaigns.models import CampaignPlanVersion, ContactCampaign
from campaigns.services.locking import LockedRow, locked_model, refreshed
from campaigns.services.work import apply_one
from outreach.errors import ApplicationError


def contact_campaign_store_plan(*, contact_campaign: ContactCampaign, plan: Any, source: str,
                                source_detail: str = "") -> CampaignPlanVersion:
    """Validate and store a plan version; the same plan again returns the version already stored.

    Raises `PlanInvalid` (an ApplicationError whose `extra["problems"]` lists every problem) for a bad plan.
    The new version becomes the current plan of a contact campaign that has none or has not started;
    a running campaign switches plans only through `contact_campaign_replace_plan`.
    """
    if source not in CampaignPlanVersion.Source.values:
        raise ApplicationError(f"Unknown plan source {source!r}; choose one of "
                               f"{', '.join(CampaignPlanVersion.Source.values)}.", field="source")
    parsed = parse_plan(plan)  # PlanInvalid carries every problem
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        version = _store_version(cc, parsed, source, source_detail)
        if cc.current_plan_version_id is None or cc.status == ContactCampaign.Status.PENDING:
            _set_current_plan(cc, version)
    contact_campaign.current_plan_version_id = cc.current_plan_version_id
    contact_campaign.plan_json = cc.plan_json
    return version


def _store_version(cc: ContactCampaign, parsed: Plan, source: str, source_detail: str) -> CampaignPlanVersion:
    digest = plan_hash(parsed)
    existing = CampaignPlanVersion.objects.filter(contact_campaign=cc, plan_hash=digest).first()
    if existing is not None:
        return existing
    last = (CampaignPlanVersion.objects.filter(contact_campaign=cc).order_by("-version")
            .values_list("version", flat=True).first())
    return CampaignPlanVersion.objects.create(
        tenant_id=cc.tenant_id, contact_campaign=cc, version=(last or 0) + 1, plan_json=parsed.to_document(),
        plan_hash=digest, source=source, source_detail=source_detail,
    )


def _set_current_plan(cc: ContactCampaign, version: CampaignPlanVersion) -> None:
    cc.current_plan_version = version
    cc.plan_json = version.plan_json
    cc.save(update_fields=["current_plan_version", "plan_json", "updated_at"])


def contact_campaign_start(*, contact_campaign: ContactCampaign) -> ContactCampaign:
    """Enter the plan's start node. Idempotent: a contact campaign that is not pending is returned as is."""
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        if cc.status != ContactCampaign.Status.PENDING:
            return refreshed(contact_campaign)
        if cc.plan_json is None:
            raise ApplicationError("This contact campaign has no plan yet; store one first.", field="plan",
                                   status_code=http_status.HTTP_409_CONFLICT)
        apply_one(cc.pk, lambda row, now: engine.enter_start(row.plan, now, row.state))
    return refreshed(contact_campaign)


def contact_campaign_replace_plan(*, contact_campaign: ContactCampaign, plan: Any, source: str,
                                  restart: bool = False) -> ContactCampaign:
    """Switch a contact campaign to a new plan (docs/plan-dsl.md, "Versions").

    Running: the campaign stays on its current node when the new plan has it (timers re-armed from the
    original send or entry; a message not yet sent takes the new copy); otherwise it is refused (409)
    unless `restart`, which starts the new plan from its start node. Pending: the plan just becomes
    current. Finished: refused.
    """
    if source not in CampaignPlanVersion.Source.values:
        raise ApplicationError(f"Unknown plan source {source!r}.", field="source")
    parsed = parse_plan(plan)
    with transaction.atomic():
        cc = locked_model(contact_campaign)
        if cc.status in ContactCampaign.FINAL_STATUSES:
            raise ApplicationError(f"This contact campaign is {cc.status}; its plan can no longer change.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        version = _store_version(cc, parsed, source, "")
        if version.pk == cc.current_plan_version_id and not restart:
            return refreshed(contact_campaign)
        old_plan_json = cc.plan_json
        _set_current_plan(cc, version)
        if cc.status == ContactCampaign.Status.PENDING:
            return refreshed(contact_campaign)

        def decide(row: LockedRow, now: dt.datetime) -> Decision:
            old = parse_plan(old_plan_json) if old_plan_json is not None else None
            try:
                decision = engine.replan(old, parsed, row.state, now, restart=restart)
            except engine.PlanReplaceRefused as exc:
                raise ApplicationError(str(exc), field="restart", status_code=http_status.HTTP_409_CONFLICT) from exc
            for record in decision.transitions:
                record.detail["plan_version"] = version.version
            return decision

        apply_one(cc.pk, decide)
    return refreshed(contact_campaign)
