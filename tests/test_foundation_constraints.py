"""The database itself enforces uniqueness and the main invariants (not only Python checks).

Each case inserts a row that breaks one constraint with a direct ORM create and
asserts that PostgreSQL refuses it *by that constraint's name*, so a NOT NULL or an
unrelated violation cannot pass for it. A completeness test fails when a model gains
a constraint without a case here.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, models, transaction

from analytics import models as analytics_models
from analytics.tests.factories import ROLLUP_KEYS, DeliverabilityAlertFactory, TenantAnalyticsSettingsFactory
from campaigns.models import CampaignPlanVersion, ContactCampaign, ScheduledAction
from campaigns.tests.factories import CampaignPlanVersionFactory, ContactCampaignFactory, ScheduledActionFactory
from contacts.models import Contact, ContactChannel, EmailValidationResult, Lead
from contacts.tests.factories import (
    ContactChannelFactory,
    ContactFactory,
    EmailValidationResultFactory,
    LeadFactory,
)
from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    EmailSenderIdentity,
    InboundMessage,
    MessageEvent,
    OutboundMessage,
    SendRateLimit,
)
from messaging.tests.factories import (
    CommunicationSuppressionFactory,
    ContactUnsubscribeFactory,
    EmailSenderIdentityFactory,
    InboundMessageFactory,
    MessageEventFactory,
    OutboundMessageFactory,
    SendRateLimitFactory,
)
from outreach import clock
from outreach.ai.models import AIBudgetAlert, AITenantMonthSpend
from outreach.tenancy.models import ApiKey, GlobalSendingSwitch, IdempotencyRecord, Tenant, TenantMembership
from outreach.tenancy.services import api_key_create
from outreach.tenancy.tests.factories import MembershipFactory, TenantFactory
from outreach.testing import top_index_name

# The project's own apps (third-party and Django's tables are not ours to test).
PROJECT_APPS = ("tenancy", "ai", "contacts", "campaigns", "messaging", "analytics")


@dataclass(frozen=True)
class Case:
    """`key` is a constraint name, or "app_label.Model.field" for a field declared unique=True."""

    key: str
    build: Callable[[], tuple[type[models.Model], dict[str, Any]]]  # the offending row


def _unsaved_kwargs(instance: models.Model, **overrides: Any) -> dict[str, Any]:
    """A copy of a saved row's concrete fields (no pk), to insert again."""
    data = {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not f.primary_key and not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
    }
    data.update(overrides)
    return data


def _api_key_copy(field: str) -> tuple[type[models.Model], dict[str, Any]]:
    first = api_key_create(tenant=TenantFactory(), role="member").api_key
    other = api_key_create(tenant=first.tenant, role="member").api_key
    ApiKey.objects.filter(pk=other.pk).delete()
    # Another key's values, except the one field that collides with the first key.
    return ApiKey, _unsaved_kwargs(other, **{field: getattr(first, field)})


def _idempotency_copy() -> dict[str, Any]:
    first = IdempotencyRecord.objects.create(tenant=TenantFactory(), key="k", fingerprint="0" * 64, method="POST",
                                             path="/api/v1/leads", expires_at=clock.now())
    return {"tenant": first.tenant, "key": "k", "fingerprint": "1" * 64, "method": "POST", "path": "/x",
            "expires_at": clock.now()}


def _analytics_twin(name: str) -> tuple[type[models.Model], dict[str, Any]]:
    """A second analytics row with the first one's key (rollup rows carry plain ids, no foreign keys)."""
    model = getattr(analytics_models, name)
    model.objects.create(**ROLLUP_KEYS[name])
    return model, dict(ROLLUP_KEYS[name])


def _lead_twin() -> dict[str, Any]:
    first = LeadFactory(domain="twin.example")
    return {"tenant": first.tenant, "name": "Twin", "domain": "twin.example"}


UNIQUE_CASES = [
    Case("tenancy.Tenant.slug", lambda: (Tenant, {"name": "Twin", "slug": TenantFactory().slug})),
    Case("uniq_membership_tenant_user", lambda: (
        TenantMembership, _unsaved_kwargs(MembershipFactory(), role="admin"))),
    Case("tenancy.ApiKey.prefix", lambda: _api_key_copy("prefix")),
    Case("uniq_idempotency_tenant_key", lambda: (IdempotencyRecord, _idempotency_copy())),
    Case("uniq_lead_tenant_domain", lambda: (Lead, _lead_twin())),
    Case("tenancy.ApiKey.key_hash", lambda: _api_key_copy("key_hash")),
    Case("uniq_contact_tenant_email", lambda: (
        Contact, _unsaved_kwargs(ContactFactory(), first_name="Twin"))),
    Case("uniq_contact_channel_value", lambda: (
        ContactChannel, _unsaved_kwargs(ContactChannelFactory(), is_primary=False))),
    Case("uniq_validation_tenant_email", lambda: (
        EmailValidationResult, _unsaved_kwargs(EmailValidationResultFactory(), verdict="Risky"))),
    Case("uniq_contact_campaign_per_channel", lambda: (
        ContactCampaign, _unsaved_kwargs(ContactCampaignFactory()))),
    Case("uniq_plan_version_number", lambda: (
        CampaignPlanVersion, _unsaved_kwargs(CampaignPlanVersionFactory(), plan_hash="f" * 64))),
    Case("uniq_plan_version_hash", lambda: (
        CampaignPlanVersion, _unsaved_kwargs(CampaignPlanVersionFactory(version=1), version=2))),
    Case("scheduled_actions_dedupe_key_key", lambda: (
        ScheduledAction, _unsaved_kwargs(ScheduledActionFactory(), node_visit=2))),
    Case("uniq_sender_tenant_email", lambda: (
        EmailSenderIdentity, _unsaved_kwargs(EmailSenderIdentityFactory(), from_name="Twin"))),
    Case("uniq_outbound_dedupe_key", lambda: (
        OutboundMessage, _unsaved_kwargs(OutboundMessageFactory(), message_id_header=None))),
    Case("uniq_outbound_message_id_header", lambda: (
        OutboundMessage, _unsaved_kwargs(OutboundMessageFactory(message_id_header="<m1@outreach.example>"),
                                         dedupe_key="other-key"))),
    # message_events is partitioned: its keys hold the partition column (occurred_at, kept by the copy).
    Case("uniq_message_event_dedupe_key", lambda: (
        MessageEvent, _unsaved_kwargs(MessageEventFactory(), provider_event_id="evt-other"))),
    Case("uniq_provider_event_id", lambda: (
        MessageEvent, _unsaved_kwargs(MessageEventFactory(), dedupe_key="content-other"))),
    Case("inbound_messages_message_id_header_key", lambda: (
        InboundMessage, _unsaved_kwargs(InboundMessageFactory(), subject="Re: again"))),
    Case("uniq_suppression_tenant_value", lambda: (
        CommunicationSuppression, _unsaved_kwargs(CommunicationSuppressionFactory(), reason="manual"))),
    Case("uniq_unsubscribe_tenant_channel_value", lambda: (
        ContactUnsubscribe, _unsaved_kwargs(ContactUnsubscribeFactory(), source="link_click"))),
    Case("uniq_ai_budget_alert_month", lambda: (AIBudgetAlert, _unsaved_kwargs(AIBudgetAlert.objects.create(
        tenant=TenantFactory(), month=dt.date(2026, 1, 1), spend_usd="10", budget_usd="10")))),
    Case("uniq_ai_spend_tenant_month", lambda: (AITenantMonthSpend, _unsaved_kwargs(
        AITenantMonthSpend.objects.create(tenant=TenantFactory(), month=dt.date(2026, 1, 1), spend_usd="1"),
        spend_usd="2"))),
    Case("uniq_rate_limit_scope_key", lambda: (
        SendRateLimit, _unsaved_kwargs(SendRateLimitFactory(), per_hour=None, per_day=1000))),
    Case("uniq_metrics_contact_hourly", lambda: _analytics_twin("ContactHourly")),
    Case("uniq_metrics_campaign_daily", lambda: _analytics_twin("CampaignDaily")),
    Case("uniq_metrics_tenant_daily", lambda: _analytics_twin("TenantDaily")),
    Case("uniq_metrics_sender_daily", lambda: _analytics_twin("SenderDaily")),
    Case("uniq_metrics_domain_daily", lambda: _analytics_twin("DomainDaily")),
    Case("uniq_metrics_first", lambda: _analytics_twin("MessageFirst")),
    Case("analytics.TenantAnalyticsSettings.tenant", lambda: (
        analytics_models.TenantAnalyticsSettings, _unsaved_kwargs(TenantAnalyticsSettingsFactory(), time_zone="UTC"))),
    Case("uniq_open_deliverability_alert", lambda: (
        analytics_models.DeliverabilityAlert, _unsaved_kwargs(DeliverabilityAlertFactory(), value=0.04))),
]

CHECK_CASES = [
    Case("global_switch_single_row", lambda: (GlobalSendingSwitch, {"id": 2})),
    Case("active_contact_campaign_has_node", lambda: (
        ContactCampaign, _unsaved_kwargs(ContactCampaignFactory(), channel="sms", status="active",
                                         current_node_id=""))),
    Case("plan_version_positive", lambda: (
        CampaignPlanVersion, _unsaved_kwargs(CampaignPlanVersionFactory(), version=0, plan_hash="e" * 64))),
    Case("sent_message_has_sent_at", lambda: (
        OutboundMessage, _unsaved_kwargs(OutboundMessageFactory(), dedupe_key="other-key", status="sent",
                                         sent_at=None))),
    Case("rate_limit_has_a_cap", lambda: (
        SendRateLimit, _unsaved_kwargs(SendRateLimitFactory(), scope="sender", key="rep@seller.example",
                                       per_minute=None, per_hour=None, per_day=None))),
]


def _project_constraint_keys() -> set[str]:
    keys: set[str] = set()
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        keys.update(c.name for c in model._meta.constraints)
        keys.update(
            f"{model._meta.label}.{f.name}"
            for f in model._meta.concrete_fields
            if f.unique and not f.primary_key
        )
        assert not model._meta.unique_together, f"{model._meta.label}: use UniqueConstraint, not unique_together"
    return keys


def _unique_field_constraint_name(model: type[models.Model], field_name: str) -> str:
    """PostgreSQL's name for the UNIQUE constraint behind a unique=True field."""
    column = model._meta.get_field(field_name).column
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT con.conname FROM pg_constraint con
            JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = ANY (con.conkey)
            WHERE con.conrelid = to_regclass(%s) AND con.contype = 'u'
              AND array_length(con.conkey, 1) = 1 AND att.attname = %s
            """,
            [model._meta.db_table, column],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, f"expected one UNIQUE constraint on {model._meta.db_table}.{column}, found {rows}"
    return rows[0][0]


def _violated_constraint(exc: IntegrityError) -> str:
    # On a partitioned table PostgreSQL names the partition's copy of the key: report the declared one.
    return top_index_name(exc.__cause__.diag.constraint_name)


def test_every_project_constraint_has_a_database_case():
    covered = {case.key for case in UNIQUE_CASES + CHECK_CASES}
    missing = _project_constraint_keys() - covered
    stale = covered - _project_constraint_keys()
    assert not missing, f"add a case to tests/test_foundation_constraints.py for: {sorted(missing)}"
    assert not stale, f"cases for constraints that no longer exist: {sorted(stale)}"


@pytest.mark.django_db
@pytest.mark.parametrize("case", UNIQUE_CASES + CHECK_CASES, ids=lambda case: case.key)
def test_database_rejects_the_row_that_breaks_the_constraint(case: Case):
    model, kwargs = case.build()
    if case.key.count(".") == 2:
        expected = _unique_field_constraint_name(model, case.key.rsplit(".", 1)[1])
    else:
        expected = case.key
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        model.objects.create(**kwargs)
    assert _violated_constraint(excinfo.value) == expected


@pytest.mark.django_db
def test_events_without_a_provider_id_may_repeat_it():
    # The provider-id constraint is partial: synthetic events (no_open, ...) have no provider id.
    first = MessageEventFactory(provider_event_id="")
    MessageEvent.objects.create(**_unsaved_kwargs(first, dedupe_key="synthetic-2"))
    assert MessageEvent.objects.filter(provider_event_id="").count() == 2


@pytest.mark.django_db
def test_contacts_without_an_email_may_share_the_empty_value():
    # The email constraint is partial: a phone-only contact has no address to collide on.
    first = ContactFactory(email="", phone="+14155550100")
    Contact.objects.create(**_unsaved_kwargs(first, phone="+14155550101"))
    assert Contact.objects.filter(tenant=first.tenant, email="").count() == 2


@pytest.mark.django_db
def test_active_contact_campaign_with_a_node_is_accepted():
    contact_campaign = ContactCampaignFactory(status="active", current_node_id="email_intro")
    assert ContactCampaign.objects.filter(pk=contact_campaign.pk, status="active").exists()


@pytest.mark.django_db
def test_deleting_a_contact_keeps_its_unsubscribes_and_a_reupload_still_finds_them():
    contact = ContactFactory(email="Dana@Acme.example")
    ContactUnsubscribeFactory(tenant=contact.tenant, channel="email", channel_value=contact.email,
                              contact=contact)

    contact.delete()

    unsubscribe = ContactUnsubscribe.objects.get(tenant=contact.tenant, channel_value="dana@acme.example")
    assert unsubscribe.contact_id is None
    reuploaded = Contact.objects.create(tenant=contact.tenant, email="DANA@acme.example")
    assert ContactUnsubscribe.objects.filter(
        tenant=reuploaded.tenant, channel="email", channel_value=reuploaded.email
    ).exists()


@pytest.mark.django_db
def test_deleting_a_lead_with_its_contacts_keeps_their_unsubscribes():
    lead = LeadFactory()
    contacts = ContactFactory.create_batch(3, tenant=lead.tenant, lead=lead)
    for contact in contacts:
        ContactUnsubscribeFactory(tenant=lead.tenant, channel_value=contact.email, contact=contact)

    Lead.objects.filter(pk=lead.pk).delete()

    assert not Contact.objects.filter(pk__in=[c.pk for c in contacts]).exists()
    assert ContactUnsubscribe.objects.filter(tenant=lead.tenant, contact__isnull=True).count() == 3


@pytest.mark.django_db
def test_a_sent_message_with_its_send_time_is_accepted():
    message = OutboundMessageFactory(status="sent", sent_at=clock.now() - dt.timedelta(minutes=1))
    assert OutboundMessage.objects.get(pk=message.pk).status == "sent"
