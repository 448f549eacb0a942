"""Campaign reads: plans (parsed once per process), engine state, history (the send holds: campaigns.holds)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from django.db.models import QuerySet

from campaigns.dsl import Plan, parse_plan, plan_hash
from campaigns.engine import EngineState
from campaigns.models import CampaignTransition, ContactCampaign, ScheduledAction

# Parsed plans by plan_hash. Plans are immutable per version and many contacts share a shape, so the hot path
# parses each plan once per process instead of once per event (pydantic parsing costs ~0.1 ms a plan).
_PLAN_CACHE: OrderedDict[str, Plan] = OrderedDict()
_PLAN_CACHE_SIZE = 4096


def plan_from_json(*, plan_json: Any, known_hash: str | None = None) -> Plan:
    """The parsed plan of a stored plan document, from the process cache when the same plan was seen."""
    key = known_hash or plan_hash(plan_json)
    plan = _PLAN_CACHE.get(key)
    if plan is not None:
        _PLAN_CACHE.move_to_end(key)
        return plan
    plan = parse_plan(plan_json)
    _PLAN_CACHE[key] = plan
    if len(_PLAN_CACHE) > _PLAN_CACHE_SIZE:
        _PLAN_CACHE.popitem(last=False)
    return plan


def plan_cached(*, known_hash: str) -> Plan | None:
    plan = _PLAN_CACHE.get(known_hash)
    if plan is not None:
        _PLAN_CACHE.move_to_end(known_hash)
    return plan


def contact_campaign_plan(*, contact_campaign: ContactCampaign) -> Plan | None:
    if contact_campaign.plan_json is None:
        return None
    version = contact_campaign.current_plan_version
    return plan_from_json(plan_json=contact_campaign.plan_json, known_hash=version.plan_hash if version else None)


def contact_campaign_state(*, contact_campaign: ContactCampaign) -> EngineState:
    cc = contact_campaign
    return EngineState(
        status=cc.status, current_node_id=cc.current_node_id, node_visit=cc.node_visit,
        node_entered_at=cc.node_entered_at, node_sent_at=cc.node_sent_at, not_before=cc.not_before,
        engagement_flags=cc.engagement_flags, stop_reason=cc.stop_reason, started_at=cc.started_at,
        finished_at=cc.finished_at,
    )


def contact_campaign_transitions(*, contact_campaign_id: int, tenant_id: int | None = None
                                 ) -> QuerySet[CampaignTransition]:
    qs = CampaignTransition.objects.filter(contact_campaign_id=contact_campaign_id)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("id")


def contact_campaign_pending_actions(*, contact_campaign_id: int) -> QuerySet[ScheduledAction]:
    return ScheduledAction.objects.filter(
        contact_campaign_id=contact_campaign_id,
        status__in=[ScheduledAction.Status.PENDING, ScheduledAction.Status.CLAIMED, ScheduledAction.Status.HELD],
    ).order_by("due_at", "id")
