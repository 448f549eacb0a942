"""Plan generation: the model writes each contact's plan; the validator and copy guards judge it.

    draft = plan_draft(inputs=..., tenant=...)          # AI (one repair round) or the built-in planner
    contact_campaign_generate_plan(contact_campaign=cc) # draft, store as a version, start the campaign

The AI's answer is untrusted input. It must pass `campaigns.dsl.validate_plan`, use the contact's time
zone, and pass `campaigns.copy_guards.copy_problems`. If it does not, the model gets ONE repair round in
which it sees every problem (path and message); still failing, the deterministic fallback planner
writes the plan and the reason is stored in the version's `source_detail`. The model call never happens
inside a database transaction (it can take seconds; the row locks are taken by the store service).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from django.db import transaction

from campaigns.copy_guards import copy_problems
from campaigns.dsl import parse_plan, plan_json_schema, validate_plan
from campaigns.fallback_planner import (
    BriefInput,
    ContactInput,
    LeadInput,
    PlanInputs,
    fallback_plan,
    plan_timezone,
)
from campaigns.generation_leases import generation_locked
from campaigns.models import ContactCampaign
from campaigns.services import contact_campaign_start, contact_campaign_store_plan
from contacts.interface import lead_analyse
from outreach import clock
from outreach.ai import client as ai_client
from outreach.ai.prompting import PromptBook
from outreach.publishing import publish_ids
from outreach.queues import TaskName

PROMPTS = PromptBook.beside(__file__)

logger = logging.getLogger(__name__)

__all__ = [
    "BriefInput", "ContactInput", "LeadInput", "PlanDraft", "PlanGenerationDeferred", "PlanInputs",
    "contact_campaign_generate_plan", "plan_draft", "plan_inputs_for_contact_campaign", "plan_problems",
]

_MAX_PROBLEMS_SHOWN = 40  # problems listed in the repair prompt; a plan with more is rewritten anyway


@dataclasses.dataclass(frozen=True)
class PlanDraft:
    plan: dict[str, Any]
    source: str  # "ai", "ai_repaired" or "fallback" (CampaignPlanVersion.Source)
    source_detail: str = ""


class PlanGenerationDeferred(Exception):
    """The AI is at this tenant's cap (or the provider's rate limit): try again in `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- checks ---------------------------------------------------------------------------------------------


def plan_problems(data: Any, *, inputs: PlanInputs) -> list[dict[str, str]]:
    """Everything wrong with a candidate plan for these inputs: DSL validation, time zone, copy guards."""
    problems = validate_plan(data)
    if problems:
        return problems
    expected_zone = plan_timezone(inputs.contact.timezone)
    if data.get("timezone") != expected_zone:
        problems.append({"path": "timezone",
                         "message": f"must be the contact's timezone {expected_zone!r}, not {data.get('timezone')!r}"})
    problems += copy_problems(
        plan=data,
        first_name=inputs.contact.first_name.strip(),
        last_name=inputs.contact.last_name.strip(),
        allowed_link_domains=inputs.brief.allowed_link_domains,
    )
    return problems


def _summarise(problems: list[dict[str, str]], limit: int = 3) -> str:
    parts = [f"{p['path'] or '(plan)'}: {p['message']}" for p in problems[:limit]]
    more = f" (+{len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(parts) + more


def _answer_problems(result: Any, inputs: PlanInputs) -> list[dict[str, str]]:
    if result.parse_error:
        return [{"path": "", "message": result.parse_error}]
    return plan_problems(result.data, inputs=inputs)


def _normalised(data: dict[str, Any]) -> dict[str, Any]:
    # Strict structured outputs send every optional key as null; store the plan without them.
    return parse_plan(data).to_document()


# --- drafting -------------------------------------------------------------------------------------------


def _fallback(inputs: PlanInputs, detail: str) -> PlanDraft:
    plan = fallback_plan(inputs)
    problems = validate_plan(plan)
    if problems:  # a bug in the built-in planner, never the user's fault: fail loudly
        raise AssertionError(f"fallback plan is invalid: {_summarise(problems)}")
    return PlanDraft(plan=plan, source="fallback", source_detail=detail[:2000])


def _messages(inputs: PlanInputs) -> list[dict[str, str]]:
    payload = inputs.as_dict()
    payload["contact"]["timezone"] = plan_timezone(inputs.contact.timezone)
    payload["contact"]["language"] = inputs.contact.language or "unknown"
    return [
        {"role": "system", "content": PROMPTS.load("plan_system")},
        {"role": "user", "content": PROMPTS.render(
            "plan_user",
            timezone=plan_timezone(inputs.contact.timezone),
            first_name=inputs.contact.first_name.strip() or "(unknown: greet without a name)",
            inputs_json=json.dumps(payload, ensure_ascii=False, indent=1),
        )},
    ]


def plan_draft(*, inputs: PlanInputs, tenant: Any = None, allow_defer: bool = False) -> PlanDraft:
    """A valid plan for these inputs: the AI's, its repaired one, or the built-in planner's.

    With `allow_defer`, a call refused by the tenant's AI cap or the provider's rate limit raises
    PlanGenerationDeferred (the task re-enqueues) instead of settling for the fallback.
    """
    if not ai_client.ai_enabled():
        return _fallback(inputs, "no OPENAI_API_KEY configured: built-in planner")
    schema = plan_json_schema(strict=True)
    messages = _messages(inputs)

    def ask(purpose: str, msgs: list[dict[str, str]]):
        return ai_client.complete_json(tenant=tenant, purpose=purpose, messages=msgs, schema=schema,
                                       schema_name="plan", strict=True)

    try:
        first = ask("plan", messages)
    except ai_client.AIError as exc:
        if allow_defer and exc.kind in ("busy", "rate_limited"):
            raise PlanGenerationDeferred(str(exc), retry_after=exc.retry_after or 5.0) from exc
        return _fallback(inputs, f"AI call failed ({exc.kind}): {exc}")
    problems = _answer_problems(first, inputs)
    if not problems:
        return PlanDraft(plan=_normalised(first.data), source="ai")

    logger.info("AI plan invalid (%d problems), asking for one repair: %s", len(problems), _summarise(problems))
    repair = messages + [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": PROMPTS.render(
            "plan_repair",
            problems_json=json.dumps(problems[:_MAX_PROBLEMS_SHOWN], ensure_ascii=False, indent=1),
            first_name=inputs.contact.first_name.strip() or "without a name",
        )},
    ]
    try:
        second = ask("plan_repair", repair)
    except ai_client.AIError as exc:
        return _fallback(inputs, f"AI plan invalid ({_summarise(problems)}); repair call failed ({exc.kind}): {exc}")
    remaining = _answer_problems(second, inputs)
    if not remaining:
        return PlanDraft(plan=_normalised(second.data), source="ai_repaired",
                         source_detail=f"repaired {len(problems)} problem(s): {_summarise(problems)}")
    return _fallback(inputs, f"AI plan still invalid after one repair round: {_summarise(remaining)}")


# --- from the database ----------------------------------------------------------------------------------


def _lead_input(lead: Any) -> LeadInput:
    if lead is None:
        return LeadInput()
    # Plans may be asked for before the lead_analysis queue got to this lead (an enrolment enqueues its
    # plans at once): analyse it now, stored, so the analysis task later skips it.
    analysis = lead.analysis if isinstance(lead.analysis, dict) and lead.analysis.get("summary") is not None \
        else lead_analyse(lead=lead)
    return LeadInput(
        name=lead.name or "",
        domain=lead.domain or "",
        summary=str(analysis.get("summary") or ""),
        pains=tuple(str(p) for p in analysis.get("pains") or ())[:5],
        angles=tuple(str(a) for a in analysis.get("angles") or ())[:5],
        fit_score=analysis.get("fit_score"),
    )


def plan_inputs_for_contact_campaign(*, contact_campaign: Any) -> PlanInputs:
    campaign = contact_campaign.campaign
    contact = contact_campaign.contact
    sender = campaign.sender_identity
    return PlanInputs(
        brief=BriefInput(
            goal=campaign.goal or "",
            offer=campaign.offer or "",
            ai_instructions=campaign.ai_instructions or "",
            allowed_link_domains=tuple(str(d) for d in (campaign.allowed_link_domains or []) if d),
            campaign_name=campaign.name or "",
            sender_name=(sender.from_name if sender else "") or "",
            sender_company=contact_campaign.tenant.name if contact_campaign.tenant_id else "",
        ),
        contact=ContactInput(
            first_name=contact.first_name or "",
            last_name=contact.last_name or "",
            title=contact.title or "",
            email=contact.email or "",
            timezone=contact.timezone or "",
            language=contact.language or "",
        ),
        lead=_lead_input(contact.lead),
    )


def _store_and_start(cc: ContactCampaign, draft: PlanDraft) -> Any:
    """Store the plan and enter its start node in ONE transaction: a crash or a database outage in between
    can no longer leave the enrolment `pending` with a plan."""
    with transaction.atomic():
        version = contact_campaign_store_plan(contact_campaign=cc, plan=draft.plan, source=draft.source,
                                              source_detail=draft.source_detail)
        contact_campaign_start(contact_campaign=cc)
    return version


def contact_campaign_generate_plan(*, contact_campaign: Any, allow_defer: bool = False) -> Any | None:
    """Write, store and start the plan of a pending contact campaign. Returns the CampaignPlanVersion, or
    None when there is nothing to do (no longer pending, or another live worker is on it).

    A pending enrolment that already has a plan (stored before this change made store and start one
    transaction, or set on a pending enrolment through the API) is started on it, without a model call.
    """
    with generation_locked(contact_campaign.pk) as locked:
        if not locked:
            logger.info("contact campaign %s: plan generation already running elsewhere", contact_campaign.pk)
            return None
        cc = (ContactCampaign.objects.select_related("campaign__sender_identity", "contact__lead", "tenant")
              .filter(pk=contact_campaign.pk).first())
        if cc is None or cc.status != ContactCampaign.Status.PENDING:
            return None
        if cc.current_plan_version_id:
            contact_campaign_start(contact_campaign=cc)
            logger.warning("contact campaign %s: stored plan started (it had not been)", cc.pk)
            return cc.current_plan_version
        draft = plan_draft(inputs=plan_inputs_for_contact_campaign(contact_campaign=cc), tenant=cc.tenant,
                           allow_defer=allow_defer)
        version = _store_and_start(cc, draft)
        logger.info("contact campaign %s: plan v%s stored (%s)", cc.pk, version.version, draft.source)
        return version


def contact_campaigns_requeue_stale_generation(*, older_than: dt.timedelta, limit: int = 5000) -> int:
    """Publish plan generation again for enrolments still pending long after they were created: no plan yet
    (their message was lost, e.g. the broker was down at commit), or a plan stored and never started. Safe
    to repeat: generation takes a per-contact lock, writes no second plan and starts a stored one."""
    cutoff = clock.now() - older_than
    ids = list(ContactCampaign.objects.filter(status=ContactCampaign.Status.PENDING, created_at__lt=cutoff)
               .order_by("created_at").values_list("pk", flat=True)[:limit])
    if ids:
        publish_ids(task_name=TaskName.GENERATE_PLANS, ids=ids)
        logger.warning("re-published plan generation for %d enrolment(s) waiting since before %s", len(ids), cutoff)
    return len(ids)
