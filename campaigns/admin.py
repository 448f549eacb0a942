"""Operator console: campaigns, enrolments, plan versions, timers and the transition history.

The engine owns every contact campaign's state, timers and history: the admin shows
them and never edits them (an edit here would bypass the locking and idempotency
the engine relies on). Pause, resume and cancel go through campaigns.services, from
a confirmation page (change-page buttons and bulk actions, see outreach.admin.Switch).

A contact campaign's page shows its plan as a step list (current node marked) and
its timeline (transitions, messages, provider events, replies) in a fixed number of
queries, whatever the length of its history.
"""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from campaigns.models import Campaign, CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from outreach.admin import (
    BigTableAdmin,
    OwnerDeletesHistoryMixin,
    ReadOnlyAdmin,
    Switch,
    SwitchesAdminMixin,
    TenantConsistentForm,
    operator_console_counts,
    static_choices_filter,
)
from outreach.channels import Channel

ADMIN_REASON = "admin console"
EXCERPT_CHARS = 240
TIMELINE_SHOWN = 500  # one enrolment has ~10 messages; a few hundred rows means bot noise, not more meaning


# --- switches (services imported when called: the admin must load even while campaigns.services is changing) -----

def _campaign_pause(campaign: Campaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import campaign_pause

    campaign_pause(campaign=campaign, actor=actor, reason=reason or ADMIN_REASON)


def _campaign_resume(campaign: Campaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import campaign_resume

    campaign_resume(campaign=campaign, actor=actor, reason=reason or ADMIN_REASON)


def _campaign_cancel(campaign: Campaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import campaign_cancel

    campaign_cancel(campaign=campaign, actor=actor, reason=reason or ADMIN_REASON)


CAMPAIGN_SWITCHES = (
    Switch(name="pause_campaigns", label="Pause campaign", done="paused",
           applies=lambda c: c.status == Campaign.Status.ACTIVE, run=_campaign_pause, skipped_note="not active",
           explanation="Due sends of this campaign are held (kept, not dropped) until it is resumed; events, "
                       "replies and opt-outs are still handled."),
    Switch(name="resume_campaigns", label="Resume campaign", done="resumed",
           applies=lambda c: c.status in (Campaign.Status.PAUSED, Campaign.Status.DRAFT), run=_campaign_resume,
           skipped_note="not paused or draft",
           explanation="The campaign becomes active (a draft starts); held sends are released on the "
                       "dispatcher's next tick, re-timed into allowed hours."),
    Switch(name="cancel_campaigns", label="Cancel campaign", done="canceled",
           applies=lambda c: c.status not in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED),
           run=_campaign_cancel, skipped_note="already canceled or completed", danger=True,
           explanation="Cancels the campaign and every live enrolment in it: queued messages not yet sent are "
                       "canceled. This cannot be undone."),
)


def _cc_pause(cc: ContactCampaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import contact_campaign_pause

    contact_campaign_pause(contact_campaign=cc, reason=reason or ADMIN_REASON, actor=actor)


def _cc_resume(cc: ContactCampaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import contact_campaign_resume

    contact_campaign_resume(contact_campaign=cc, reason=reason or ADMIN_REASON, actor=actor)


def _cc_cancel(cc: ContactCampaign, *, actor: Any, reason: str) -> None:
    from campaigns.services import contact_campaign_cancel

    contact_campaign_cancel(contact_campaign=cc, reason=reason or ADMIN_REASON, actor=actor)


CONTACT_CAMPAIGN_SWITCHES = (
    Switch(name="pause_contact_campaigns", label="Pause", done="paused",
           applies=lambda cc: cc.status == ContactCampaign.Status.ACTIVE, run=_cc_pause, skipped_note="not active",
           explanation="Timers and sends are held (kept, not dropped) until resumed; replies and opt-outs "
                       "still arrive and still stop it."),
    Switch(name="resume_contact_campaigns", label="Resume", done="resumed",
           applies=lambda cc: cc.status == ContactCampaign.Status.PAUSED, run=_cc_resume,
           skipped_note="not paused",
           explanation="Held sends are re-timed from now into allowed hours; held timers keep their due time."),
    Switch(name="cancel_contact_campaigns", label="Cancel", done="canceled",
           applies=lambda cc: cc.status not in ContactCampaign.FINAL_STATUSES, run=_cc_cancel,
           skipped_note="already finished", danger=True,
           explanation="Ends the enrolment for good: pending timers and messages not yet sent are canceled. "
                       "This cannot be undone."),
)


# --- the plan as a readable step list ---------------------------------------------------------------------------

_EVENT_WORDS = {
    "reply_positive": "positive reply", "reply_negative": "negative reply", "reply_neutral": "neutral reply",
    "reply_ooo": "out-of-office reply", "meeting_booked": "meeting booked",
}
_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def duration_words(text: str) -> str:
    """``P3D`` -> "3 days", ``P1DT12H`` -> "1 day 12 hours", ``P1W`` -> "1 week"; the raw text if unparseable."""
    from campaigns.durations import parse_duration

    try:
        seconds = int(parse_duration(text).total_seconds())
    except ValueError:
        return text
    parts = []
    for unit, size in _UNITS:
        # Weeks only when whole: "10 days" reads better than "1 week 3 days".
        if unit == "week" and seconds % size:
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or text


def transition_words(on: str, to: str, *, within: str | None = None, after: str | None = None) -> str:
    """One transition as an operator reads it: "on reply → stop_replied", "no open after 3 days → email_bump"."""
    if on.startswith("no_"):
        text = on.replace("_", " ")
    else:
        text = f"on {_EVENT_WORDS.get(on, on.replace('_', ' '))}"
    if within:
        text += f" within {duration_words(within)}"
    if after:
        text += f" after {duration_words(after)}"
    return f"{text} → {to}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def plan_steps(plan: Any, *, current_node_id: str = "", visited: frozenset[str] = frozenset()) -> list[dict]:
    """Each node of a parsed plan as a dict for the template, in the plan's order."""
    from campaigns.dsl import SendNode, StopNode, WaitNode

    steps = []
    for node in plan.nodes:
        step: dict[str, Any] = {
            "id": node.id, "type": node.type, "channel": "", "subject": "", "excerpt": "", "transitions": [],
            "is_start": node.id == plan.start_node_id, "is_current": node.id == current_node_id,
            "visited": node.id in visited,
        }
        if isinstance(node, SendNode):
            step["channel"] = node.channel
            step["subject"] = getattr(node.message, "subject", "")
            step["excerpt"] = _excerpt(node.message.text)
        elif isinstance(node, WaitNode):
            step["summary"] = f"wait {duration_words(node.duration)}, then → {node.next}"
        elif isinstance(node, StopNode):
            step["summary"] = f"stop: {node.reason}"
        step["transitions"] = [transition_words(t.on, t.to, within=t.within, after=t.after)
                               for t in getattr(node, "transitions", [])]
        steps.append(step)
    return steps


def _transition_details(data: dict[str, Any], item: dict[str, Any]) -> list[str]:
    details = []
    if data["to_status"] and data["to_status"] != data["from_status"]:
        details.append(f"status {data['from_status'] or 'new'} → {data['to_status']}")
    if data["reason"]:
        details.append(f"reason: {data['reason']}")
    details.append(f"visit {data['node_visit']}")
    return details


def _message_details(data: dict[str, Any], item: dict[str, Any]) -> list[str]:
    reason = f" ({data['status_reason']})" if data["status_reason"] else ""
    return [f"to {data['to_address']}", f"outbox: {data['status']}{reason}",
            f"delivery: {data['delivery_status'] or '-'}"]


def _event_details(data: dict[str, Any], item: dict[str, Any]) -> list[str]:
    details = []
    if data["is_machine"]:
        details.append("machine")
    elif item["event"] in ("open", "click"):
        details.append("human")
    if data["bounce_type"]:
        details.append(f"bounce: {data['bounce_type']}")
    details.extend(data[key][:120] for key in ("url", "reason") if data[key])
    return details


def _reply_details(data: dict[str, Any], item: dict[str, Any]) -> list[str]:
    details = [f"classified: {data['classification'] or 'not yet'}"]
    if data["is_auto_reply"]:
        details.append("auto-reply")
    if data["stop_request"]:
        details.append("asks to stop")
    details.append(_excerpt(data["text"] or "")[:160])
    return details


_DETAILS = {"transition": _transition_details, "message": _message_details, "event": _event_details,
            "reply": _reply_details, "bounce_notice": _reply_details}


def _timeline_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline selector's items with one "details" line each, for the table."""
    rows = []
    for item in items:
        data, kind = item["data"], item["kind"]
        describe = _DETAILS.get(kind)
        details = describe(data, item) if describe is not None else []
        url = reverse("admin:messaging_outboundmessage_change", args=[data["message_id"]]) if kind == "message" \
            else ""
        rows.append({**item, "details": "; ".join(d for d in details if d), "url": url,
                     "is_machine": kind == "event" and data["is_machine"]})
    return rows


class CampaignForm(TenantConsistentForm):
    tenant_scoped_fields = ("sender_identity",)


@admin.register(Campaign)
class CampaignAdmin(SwitchesAdminMixin, admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "tenant", "status", "sender_identity", "created_at")
    list_filter = ("status", "tenant")
    search_fields = ("name", "tenant__name")
    list_select_related = ("tenant", "sender_identity")
    autocomplete_fields = ("sender_identity",)
    # Status changes only through the services (pause holds sends, cancel stops every enrolment): the buttons.
    readonly_fields = ("status", "created_at", "updated_at")
    switches = CAMPAIGN_SWITCHES

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        # Cancel instead: a campaign's enrolments, outbox and history can run to millions of rows.
        return False


@admin.register(ContactCampaign)
class ContactCampaignAdmin(SwitchesAdminMixin, OwnerDeletesHistoryMixin, ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "contact", "campaign", "channel", "status", "current_node_id", "node_visit",
                    "node_entered_at", "tenant")
    list_filter = ("status", static_choices_filter("channel", Channel.choices), "tenant")
    search_fields = ("contact__email__exact",)
    list_select_related = ("contact", "campaign", "tenant")
    raw_id_fields = ("contact", "campaign", "current_plan_version")
    # plan_json is drawn as the step list below the fields, not as a JSON blob.
    fields = ("contact", "campaign", "tenant", "channel", "status", "stop_reason", "current_node_id", "node_visit",
              "node_entered_at", "node_sent_at", "engagement_flags", "not_before", "current_plan_version",
              "started_at", "finished_at", "created_at", "updated_at")
    change_form_template = "admin/campaigns/contactcampaign/operator_change_form.html"
    switches = CONTACT_CAMPAIGN_SWITCHES

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None
                   ) -> ContactCampaign | None:
        # One query for the row and everything its page names (the changelist does not need the plan version).
        queryset = self.get_queryset(request).select_related("contact", "campaign", "tenant", "current_plan_version")
        field = self.model._meta.pk if from_field is None else self.model._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (self.model.DoesNotExist, ValidationError, ValueError):
            return None

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and context.get("original") is not None:
            context.update(self.console_context(context["original"]))
        return response

    def console_context(self, cc: ContactCampaign) -> dict[str, Any]:
        """The plan as steps and the merged timeline: 4 queries for the timeline, 1 for the timers."""
        from campaigns.api.selectors import contact_campaign_timelines
        from campaigns.dsl import PlanInvalid
        from campaigns.selectors import contact_campaign_pending_actions, contact_campaign_plan

        items = contact_campaign_timelines(contact_campaign_ids=[cc.pk])[cc.pk]
        visited = frozenset(
            node for item in items if item["kind"] == "transition"
            for node in (item["data"]["from_node_id"], item["data"]["to_node_id"]) if node
        )
        plan, plan_problems = None, []
        try:
            plan = contact_campaign_plan(contact_campaign=cc)
        except PlanInvalid as exc:
            plan_problems = [f"{p['path'] or '(plan)'}: {p['message']}" for p in exc.problems]
        return {
            "plan": plan,
            "plan_problems": plan_problems,
            "plan_json": json.dumps(cc.plan_json, indent=2, ensure_ascii=False) if plan_problems else "",
            "plan_version": cc.current_plan_version,
            "plan_steps": plan_steps(plan, current_node_id=cc.current_node_id, visited=visited) if plan else [],
            "timeline": _timeline_rows(items[:TIMELINE_SHOWN]),
            "timeline_hidden": max(0, len(items) - TIMELINE_SHOWN),
            "pending_actions": list(contact_campaign_pending_actions(contact_campaign_id=cc.pk)[:50]),
        }


@admin.register(CampaignPlanVersion)
class CampaignPlanVersionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "contact_campaign_id", "version", "source", "plan_hash", "tenant", "created_at")
    list_filter = ("source", "tenant")
    search_fields = ("plan_hash__exact",)
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)


@admin.register(ScheduledAction)
class ScheduledActionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "kind", "event", "node_id", "node_visit", "due_at", "status", "attempts",
                    "contact_campaign_id", "tenant")
    list_filter = ("status", "kind", "tenant")
    search_fields = ("dedupe_key__exact",)
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)


@admin.register(CampaignTransition)
class CampaignTransitionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("occurred_at", "contact_campaign_id", "__str__", "node_visit", "from_status", "to_status",
                    "reason", "tenant")
    list_filter = (static_choices_filter("to_status", ContactCampaign.Status.choices, "to status"), "tenant")
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)


@operator_console_counts.connect
def _paused_campaigns_count() -> dict[str, int]:
    """The admin index's "Paused campaigns" figure (templates/admin/index.html)."""
    return {"paused_campaigns": Campaign.objects.filter(status=Campaign.Status.PAUSED).count()}
