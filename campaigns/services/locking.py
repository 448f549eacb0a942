"""Locking and loading contact campaigns: the rows the engine works on, locked in id order.

Every service that changes a contact campaign locks its row (`SELECT ... FOR UPDATE`, in id order when
there are many, so concurrent batches never deadlock) before it runs the pure core (campaigns.engine).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rest_framework import status as http_status

from campaigns.dsl import Plan
from campaigns.engine import EngineState
from campaigns.models import ContactCampaign
from campaigns.selectors import plan_cached, plan_from_json
from outreach.db import fast_cursor
from outreach.errors import ApplicationError

# Contact campaigns per transaction on the hot path: big enough to amortise the statements, small enough
# that row locks are held for milliseconds.
HANDLE_CHUNK = 1000

LIVE_STATUSES = ContactCampaign.LIVE_STATUSES


@dataclass
class LockedRow:
    """A locked contact campaign row, as the engine sees it."""

    id: int
    tenant_id: int
    campaign_id: int
    contact_id: int
    channel: str
    plan_version_id: int | None
    plan_hash: str | None
    state: EngineState
    plan: Plan | None = None
    before: EngineState = field(init=False)

    def __post_init__(self) -> None:
        self.before = self.state


_LOCK_SQL = """
SELECT cc.id, cc.tenant_id, cc.campaign_id, cc.contact_id, cc.channel, cc.current_plan_version_id, pv.plan_hash,
       cc.status, cc.current_node_id, cc.node_visit, cc.node_entered_at, cc.node_sent_at, cc.not_before,
       cc.engagement_flags, cc.stop_reason, cc.started_at, cc.finished_at, cc.plan_json IS NOT NULL
FROM contact_campaigns cc
LEFT JOIN campaign_plan_versions pv ON pv.id = cc.current_plan_version_id
WHERE cc.id = ANY(%s)
ORDER BY cc.id
FOR UPDATE OF cc
"""


def lock_rows(ids: Sequence[int]) -> dict[int, LockedRow]:
    """Lock the rows in id order (so concurrent batches never deadlock) and attach their parsed plans."""
    with fast_cursor() as cursor:
        cursor.execute(_LOCK_SQL, [sorted(set(ids))])
        fetched = cursor.fetchall()
    rows: dict[int, LockedRow] = {}
    missing_plans: list[int] = []
    for r in fetched:
        state = EngineState(status=r[7], current_node_id=r[8], node_visit=r[9], node_entered_at=r[10],
                            node_sent_at=r[11], not_before=r[12], engagement_flags=r[13], stop_reason=r[14],
                            started_at=r[15], finished_at=r[16])
        row = LockedRow(id=r[0], tenant_id=r[1], campaign_id=r[2], contact_id=r[3], channel=r[4],
                        plan_version_id=r[5], plan_hash=r[6], state=state)
        if r[17]:
            row.plan = plan_cached(known_hash=row.plan_hash) if row.plan_hash else None
            if row.plan is None:
                missing_plans.append(row.id)
        rows[row.id] = row
    if missing_plans:
        for cc_id, plan_json in ContactCampaign.objects.filter(id__in=missing_plans).values_list("id", "plan_json"):
            rows[cc_id].plan = plan_from_json(plan_json=plan_json, known_hash=rows[cc_id].plan_hash)
    return rows


def locked_model(contact_campaign: ContactCampaign | int) -> ContactCampaign:
    """The contact campaign model, locked (404 when it is gone)."""
    cc_id = contact_campaign if isinstance(contact_campaign, int) else contact_campaign.pk
    try:
        return ContactCampaign.objects.select_for_update(of=("self",)).get(pk=cc_id)
    except ContactCampaign.DoesNotExist:
        raise ApplicationError("Contact campaign not found.", status_code=http_status.HTTP_404_NOT_FOUND) from None


def refreshed(contact_campaign: ContactCampaign) -> ContactCampaign:
    contact_campaign.refresh_from_db()
    return contact_campaign
