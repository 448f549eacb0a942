"""The replies inbox of the operator console (issue 11): every tenant's replies, or one tenant's (the tenant
filter), with class, language, the new text (the quoted history folded away), contact, campaign and step;
filters by class and "needs review"; switches to release or discard a held reply and to correct a class
(re-fed to the engine, audited: messaging.inbound.review)."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from messaging.inbound.review import inbound_discard, inbound_reclassify, inbound_release
from messaging.inbound.selectors import NEEDS_REVIEW, REPLY_CLASSES, reply_class_filter
from messaging.models import InboundMessage
from outreach.admin import BigTableAdmin, ReadOnlyAdmin, Switch, SwitchesAdminMixin


class ReplyClassFilter(admin.SimpleListFilter):
    title = "class"
    parameter_name = "reply_class"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name.replace("_", " ")) for name in REPLY_CLASSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(reply_class_filter(self.value())) if self.value() else queryset


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "needs review"
    parameter_name = "needs_review"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Needs review (held, unreadable, or flagged)"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(NEEDS_REVIEW)
        if self.value() == "no":
            return queryset.exclude(NEEDS_REVIEW)
        return queryset


def _correct_to(label: str, *, stop: bool = False) -> Switch:
    def run(row: InboundMessage, *, actor: Any, reason: str) -> None:
        inbound_reclassify(inbound=row, label=label, stop_request=stop, actor=actor, reason=reason)

    name = "correct_to_stop" if stop else f"correct_to_{label}"
    return Switch(
        name=name, label="Correct: stop request" if stop else f"Correct class to {label}",
        done="corrected", run=run, reason_required=True, danger=stop,
        applies=lambda row: row.kind != InboundMessage.Kind.BOUNCE and row.review_status not in (
            InboundMessage.ReviewStatus.HELD, InboundMessage.ReviewStatus.DISCARDED),
        skipped_note="a bounce, or held (release it first)",
        explanation="Stores the corrected class and feeds the campaign engine the corrected event for the thread "
                    "this reply answers (audited)." + (" The address is opted out." if stop else ""),
    )


def _held(row: InboundMessage) -> bool:
    return row.review_status == InboundMessage.ReviewStatus.HELD


REPLY_SWITCHES = (
    Switch(name="release", label="Release (trust this reply)", done="released", applies=_held,
           run=lambda row, *, actor, reason: inbound_release(inbound=row, actor=actor, reason=reason),
           reason_required=True, skipped_note="not held",
           explanation="The reply failed SPF and DKIM or was marked as spam. Released, it moves the contact's "
                       "plan as it would have on arrival."),
    Switch(name="discard", label="Discard (do not trust)", done="discarded", applies=_held,
           run=lambda row, *, actor, reason: inbound_discard(inbound=row, actor=actor, reason=reason),
           skipped_note="not held", explanation="The reply stays stored and never moves a plan."),
    *(_correct_to(label) for label in ("positive", "negative", "neutral", "ooo")),
    _correct_to("negative", stop=True),
)


@admin.register(InboundMessage)
class InboundMessageAdmin(SwitchesAdminMixin, ReadOnlyAdmin, BigTableAdmin):
    list_display = ("received_at", "from_email", "kind", "classification", "stop_request", "language",
                    "new_text_short", "contact", "campaign", "step", "verdict", "review_status",
                    "review_reason", "tenant")
    list_filter = (ReplyClassFilter, NeedsReviewFilter, "kind", "verdict", "review_status", "language", "tenant")
    search_fields = ("from_email__exact", "message_id_header__exact")
    list_select_related = ("tenant", "outbound_message__contact", "outbound_message__contact_campaign__campaign")
    raw_id_fields = ("outbound_message", "webhook_delivery")
    switches = REPLY_SWITCHES

    def get_readonly_fields(self, request: HttpRequest, obj: InboundMessage | None = None) -> list[str]:
        return ["new_text_and_quote", *super().get_readonly_fields(request, obj)]

    @admin.display(description="new text")
    def new_text_short(self, obj: InboundMessage) -> str:
        text = " ".join((obj.new_text or "").split())
        return text[:120] + ("…" if len(text) > 120 else "")

    @admin.display(description="new text (quoted history folded)")
    def new_text_and_quote(self, obj: InboundMessage) -> str:
        return format_html("<div style='white-space:pre-wrap'>{}</div><details><summary>Whole message</summary>"
                           "<div style='white-space:pre-wrap'>{}</div></details>", obj.new_text, obj.text)

    @admin.display(description="contact")
    def contact(self, obj: InboundMessage) -> str:
        outbound = obj.outbound_message
        return str(outbound.contact) if outbound is not None and outbound.contact is not None else "-"

    @admin.display(description="campaign")
    def campaign(self, obj: InboundMessage) -> str:
        outbound = obj.outbound_message
        if outbound is None or outbound.contact_campaign is None:
            return "-"
        return str(outbound.contact_campaign.campaign)

    @admin.display(description="step")
    def step(self, obj: InboundMessage) -> str:
        return obj.outbound_message.node_id if obj.outbound_message is not None else "-"
