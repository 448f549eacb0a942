"""Enrolment: contacts join a campaign, each with its own plan (given, or written by the AI planner)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from rest_framework import status as http_status

from campaigns import engine
from campaigns.dsl import Plan, parse_plan, plan_hash
from campaigns.models import Campaign, CampaignPlanVersion, ContactCampaign
from campaigns.services.locking import HANDLE_CHUNK, lock_rows
from campaigns.services.work import Work
from contacts.interface import Contact
from outreach import clock
from outreach.db import fast_cursor
from outreach.errors import ApplicationError
from outreach.publishing import publish_ids_after_commit
from outreach.queues import TaskName


def campaign_enrol_contacts(*, campaign: Campaign, contact_ids: Iterable[int], plan: Any = None,
                            channel: str = "email") -> list[ContactCampaign]:
    """Enrol contacts (idempotent: an existing enrolment is returned, not duplicated).

    With `plan`, every new enrolment gets that plan and starts at once; without, the AI planner is asked
    for one plan per contact (campaign_creation.generate_plans, after commit) and they wait as `pending`.
    """
    if campaign.status in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED):
        raise ApplicationError(f"This campaign is {campaign.status}; it takes no new contacts.",
                               status_code=http_status.HTTP_409_CONFLICT)
    wanted = sorted(set(int(i) for i in contact_ids))
    found = set(Contact.objects.filter(tenant_id=campaign.tenant_id, id__in=wanted).values_list("id", flat=True))
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise ApplicationError(f"Unknown contacts for this tenant: {unknown[:20]}.", field="contact_ids")
    parsed = parse_plan(plan) if plan is not None else None
    with transaction.atomic():
        ContactCampaign.objects.bulk_create(
            [ContactCampaign(tenant_id=campaign.tenant_id, campaign=campaign, contact_id=i, channel=channel)
             for i in wanted],
            batch_size=1000, ignore_conflicts=True,
        )
        enrolments = list(ContactCampaign.objects.filter(campaign=campaign, channel=channel, contact_id__in=wanted)
                          .order_by("id"))
        waiting = [cc for cc in enrolments if cc.status == ContactCampaign.Status.PENDING
                   and cc.current_plan_version_id is None]
        if parsed is not None:
            _store_and_start(waiting, parsed)
        else:
            publish_ids_after_commit(task_name=TaskName.GENERATE_PLANS, ids=[cc.pk for cc in waiting])
    if parsed is not None and waiting:
        enrolments = list(ContactCampaign.objects.filter(pk__in=[cc.pk for cc in enrolments]).order_by("id"))
    return enrolments


def _store_and_start(enrolments: list[ContactCampaign], parsed: Plan) -> None:
    """One plan for many new enrolments: versions in bulk, then the engine's start in chunks."""
    if not enrolments:
        return
    digest = plan_hash(parsed)
    document = parsed.to_document()
    ids = [cc.pk for cc in enrolments]
    CampaignPlanVersion.objects.bulk_create(
        [CampaignPlanVersion(tenant_id=cc.tenant_id, contact_campaign_id=cc.pk, version=1, plan_json=document,
                             plan_hash=digest, source=CampaignPlanVersion.Source.MANUAL) for cc in enrolments],
        batch_size=1000, ignore_conflicts=True,
    )
    versions = dict(CampaignPlanVersion.objects.filter(contact_campaign_id__in=ids, plan_hash=digest)
                    .values_list("contact_campaign_id", "id"))
    with fast_cursor() as cursor:
        cursor.execute(
            """
            UPDATE contact_campaigns cc SET current_plan_version_id = v.version_id, plan_json = %s::jsonb
            FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, version_id)
            WHERE cc.id = v.id AND cc.current_plan_version_id IS NULL
            """,
            [_json_dumps(document), list(versions), list(versions.values())],
        )
    for start in range(0, len(ids), HANDLE_CHUNK):
        chunk = ids[start:start + HANDLE_CHUNK]
        now = clock.now()
        rows = lock_rows(chunk)
        work = Work(now)
        for cc_id in chunk:
            row = rows[cc_id]
            if row.state.status == ContactCampaign.Status.PENDING and row.plan is not None:
                work.apply(row, engine.enter_start(row.plan, now, row.state))
        work.flush(rows)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
