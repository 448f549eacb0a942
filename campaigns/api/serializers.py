"""Campaigns, enrolments, external events and metrics over the API."""
from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.api import services as api_services
from campaigns.dsl import validate_plan
from campaigns.engine import MAX_RETURN_DATE_AHEAD
from campaigns.models import Campaign, ContactCampaign
from messaging.interface import EmailSenderIdentity
from outreach import clock
from outreach.addresses import normalise_domain
from outreach.errors import ApplicationError
from outreach.tenancy.api import (
    ChangeFeedFilterSerializer,
    StorableJSONField,
    StrictFieldsMixin,
    TenantScopedPrimaryKeyRelatedField,
)

MAX_ENROL_IDS = 10_000
# Events an integration may report. Everything else comes from providers, timers or policy, and
# letting an API caller inject e.g. `unsubscribe` or `no_reply` would bypass the paths that record them.
EXTERNAL_EVENT_TYPES = ("meeting_booked", "reply", "reply_positive", "reply_negative", "reply_neutral",
                        "reply_ooo")
MAX_EVENT_CLOCK_SKEW = dt.timedelta(minutes=5)
TIMELINE_KINDS = ("transition", "message", "event", "reply", "bounce_notice")


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "A plan document (see docs/plan-dsl.md)"})
class PlanField(StorableJSONField):
    """A plan document (docs/plan-dsl.md), checked by the DSL validator: every problem reported at once."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problems = validate_plan(value)
        if problems:
            # One error per problem, at its path inside the plan ("plan.nodes[2].transitions[0].to").
            by_path: dict[str, list[str]] = {}
            for problem in problems:
                by_path.setdefault(problem["path"] or "", []).append(problem["message"])
            raise serializers.ValidationError(by_path)
        return value


class CampaignSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    sender_identity = TenantScopedPrimaryKeyRelatedField(
        queryset=EmailSenderIdentity.objects.all(), required=False, allow_null=True,
        help_text="Sender identity id (a verified one is needed before anything is sent)",
    )
    allowed_link_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=50,
        help_text="Domains the AI may link to in its copy",
    )
    class Meta:
        model = Campaign
        fields = ["id", "name", "goal", "offer", "ai_instructions", "sender_identity", "status",
                  "allowed_link_domains", "created_at", "updated_at"]
        read_only_fields = ["id", "status", "created_at", "updated_at"]
        extra_kwargs = {
            "status": {"help_text": "Changed with the pause, resume and cancel actions"},
            # The planners (AI and built-in) write every message from these two: a brief without them
            # would produce empty copy.
            "goal": {"required": True, "allow_blank": False},
            "offer": {"required": True, "allow_blank": False},
        }

    def validate_allowed_link_domains(self, value: list[str]) -> list[str]:
        cleaned = []
        for index, domain in enumerate(value):
            if not (domain or "").strip():
                continue  # a blank entry is dropped, not refused
            try:
                cleaned.append(normalise_domain(domain, field="domain"))
            except ApplicationError as exc:
                raise serializers.ValidationError({index: exc.message}) from exc
        return list(dict.fromkeys(d for d in cleaned if d))

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A campaign needs a name.")
        return value.strip()

    def create(self, validated_data: dict[str, Any]) -> Campaign:
        return api_services.campaign_create(tenant=self.context["tenant"], **validated_data)

    def update(self, instance: Campaign, validated_data: dict[str, Any]) -> Campaign:
        return api_services.campaign_update(campaign=instance, data=validated_data)


class CampaignFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="Part of the name")


class ReasonSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class EnrolSerializer(StrictFieldsMixin, serializers.Serializer):
    contact_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                        required=False, max_length=MAX_ENROL_IDS, default=list)
    lead_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                     required=False, max_length=MAX_ENROL_IDS, default=list,
                                     help_text="Enrol every contact of these leads")
    plan = PlanField(required=False, allow_null=True,
                           help_text="One plan for every contact; without it the AI writes one per contact")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("contact_ids") and not attrs.get("lead_ids"):
            raise serializers.ValidationError({"contact_ids": "Give contact_ids or lead_ids."})
        return attrs


class ContactCampaignBriefSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    plan_version = serializers.SerializerMethodField()
    plan_source = serializers.SerializerMethodField()

    class Meta:
        model = ContactCampaign
        fields = ["id", "campaign", "campaign_name", "contact", "channel", "status", "current_node_id",
                  "node_visit", "node_entered_at", "node_sent_at", "stop_reason", "not_before", "plan_version",
                  "plan_source", "started_at", "finished_at", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_plan_version(self, obj: ContactCampaign) -> int | None:
        version = obj.current_plan_version
        return version.version if version else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_plan_source(self, obj: ContactCampaign) -> str | None:
        version = obj.current_plan_version
        return version.source if version else None


class TimelineItemSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When it happened (a reply: when its mail reached us)")
    received_at = serializers.DateTimeField(allow_null=True, help_text="When we learnt of it (provider events, "
                                            "replies), shown apart from when it happened")
    kind = serializers.ChoiceField(choices=TIMELINE_KINDS)
    node_id = serializers.CharField(help_text="The node the item concerns (a transition's target node)")
    event = serializers.CharField(help_text="Transition event, message status, provider event or reply label")
    summary = serializers.CharField()
    data = serializers.DictField(help_text="Kind-specific fields (ids, subject, reason, url, ...)")


class ContactCampaignDetailSerializer(ContactCampaignBriefSerializer):
    plan = serializers.JSONField(source="plan_json", read_only=True, allow_null=True)
    current_node = serializers.SerializerMethodField(help_text="The current node of the plan, as written")
    timeline = serializers.SerializerMethodField(help_text="Transitions, messages, events and replies by time")

    class Meta(ContactCampaignBriefSerializer.Meta):
        fields = [*ContactCampaignBriefSerializer.Meta.fields, "plan", "current_node", "timeline"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
    def get_current_node(self, obj: ContactCampaign) -> dict | None:
        plan = obj.plan_json if isinstance(obj.plan_json, dict) else {}
        for node in plan.get("nodes") or []:
            if isinstance(node, dict) and node.get("id") == obj.current_node_id:
                return node
        return None

    @extend_schema_field(TimelineItemSerializer(many=True))
    def get_timeline(self, obj: ContactCampaign) -> list[dict]:
        items = self.context.get("timelines", {}).get(obj.pk, [])
        return TimelineItemSerializer(items, many=True).data


class ContactCampaignCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    campaign = TenantScopedPrimaryKeyRelatedField(queryset=Campaign.objects.all())
    plan = PlanField(required=False, allow_null=True,
                           help_text="The plan to run; without it the AI writes one (the enrolment starts "
                                     "as pending)")


class ContactCampaignFilterSerializer(ChangeFeedFilterSerializer):
    status = serializers.ChoiceField(choices=ContactCampaign.Status.choices, required=False)
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    contact = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class EnrolmentFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ContactCampaign.Status.choices, required=False)
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class AlreadyEnrolledSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    contact_campaign_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ContactCampaign.Status.choices, help_text="Its state now")


class RefusedSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    reason = serializers.CharField(help_text="unsubscribed, or suppressed:<reason>")


class EnrolResultSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField(help_text="How many contact campaigns the request concerns")
    contact_campaigns = ContactCampaignBriefSerializer(many=True)
    enrolled_now = serializers.ListField(child=serializers.IntegerField(),
                                         help_text="Contacts this request enrolled")
    already_enrolled = AlreadyEnrolledSerializer(many=True, help_text="Contacts that already were (plan kept)")
    refused = RefusedSerializer(many=True, help_text="Contacts not enrolled, and why")


class ExternalEventSerializer(StrictFieldsMixin, serializers.Serializer):
    type = serializers.ChoiceField(choices=EXTERNAL_EVENT_TYPES)
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to now; never in the future")
    detail = StorableJSONField(required=False, default=dict,
                               help_text='Free-form context, e.g. {"return_date": "2026-12-01"} for reply_ooo')

    def validate_occurred_at(self, value: dt.datetime) -> dt.datetime:
        if value > clock.now() + MAX_EVENT_CLOCK_SKEW:
            raise serializers.ValidationError("Must not be in the future.")
        return value

    def validate_detail(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        if len(str(value)) > 10_000:
            raise serializers.ValidationError("At most 10,000 characters.")
        problem = return_date_problem(value.get("return_date"), now=clock.now())
        if problem:
            raise serializers.ValidationError({"return_date": [problem]})
        return value


def return_date_problem(value: Any, *, now: dt.datetime) -> str | None:
    """Why `detail.return_date` cannot be taken, or None (absent or null is fine: no return date).

    Read as a calendar date as written (the plan's time zone is the engine's business), with a day of slack
    on the past side for callers west of UTC. The engine ignores a date it finds out of range anyway; this
    tells the caller instead of accepting nonsense (and a year-9999 date can no longer reach the engine).
    """
    if value is None:
        return None
    parsed: dt.date | None = None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value).date()  # a date, or a date-time's date as written
        except ValueError:
            parsed = None
    if parsed is None:
        return "Must be a date (YYYY-MM-DD) or an ISO 8601 date-time."
    today = now.astimezone(dt.UTC).date()
    if parsed < today - dt.timedelta(days=1):
        return "Must not be in the past."
    if parsed > today + MAX_RETURN_DATE_AHEAD:
        return f"Must be at most {MAX_RETURN_DATE_AHEAD.days} days ahead."
    return None


class EventResultSerializer(serializers.Serializer):
    outcome = serializers.CharField(help_text="moved, stopped, updated, recorded, stale or held")
    contact_campaign = ContactCampaignBriefSerializer()


class NodeMetricsSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    queued = serializers.IntegerField(help_text="Messages created for the node (outbox rows)")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    human_opens = serializers.IntegerField(help_text="Messages opened by a human (machine opens excluded)")
    human_clicks = serializers.IntegerField(help_text="Messages with a human click (link scanners excluded)")
    replies = serializers.IntegerField(help_text="Messages with a human reply (auto-replies excluded)")
    bounces = serializers.IntegerField()
    spam_reports = serializers.IntegerField()
    unsubscribes = serializers.IntegerField(help_text="Opt-outs after this node's message, the last one sent")


class MetricTotalsSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    human_opens = serializers.IntegerField()
    human_clicks = serializers.IntegerField()
    replies = serializers.IntegerField()
    bounces = serializers.IntegerField()
    spam_reports = serializers.IntegerField()
    unsubscribes = serializers.IntegerField()


class CampaignMetricsSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    totals = MetricTotalsSerializer()
    by_node = NodeMetricsSerializer(many=True)
    contact_campaigns = serializers.DictField(child=serializers.IntegerField(),
                                              help_text="Enrolments by status")
