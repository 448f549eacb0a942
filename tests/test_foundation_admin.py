"""The operator console: every registered model's pages render with data, without N+1
queries, and history stays read-only."""
from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from analytics import models as analytics_models
from analytics.tests.factories import ROLLUP_KEYS, DeliverabilityAlertFactory, TenantAnalyticsSettingsFactory
from campaigns.models import Campaign, CampaignTransition, ContactCampaign
from campaigns.tests.factories import (
    CampaignPlanVersionFactory,
    CampaignTransitionFactory,
    ContactCampaignFactory,
    ScheduledActionFactory,
    started_contact_campaign,
)
from contacts.models import Contact, ImportJob
from contacts.tests.factories import (
    ContactChannelFactory,
    ContactFactory,
    EmailValidationResultFactory,
    LeadFactory,
)
from messaging.models import ContactUnsubscribe, EmailSenderIdentity
from messaging.tests.factories import (
    CommunicationSuppressionFactory,
    ContactUnsubscribeFactory,
    EmailSenderIdentityFactory,
    InboundMessageFactory,
    MessageEventFactory,
    OutboundMessageFactory,
    SendRateLimitFactory,
    WebhookDeliveryFactory,
)
from outreach import clock
from outreach.admin import EstimatedCountPaginator, ReadOnlyAdmin, SwitchesAdminMixin
from outreach.ai.models import AIBudgetAlert, AICall, AITenantMonthSpend
from outreach.tenancy.models import AuditEntry, IdempotencyRecord
from outreach.tenancy.services import api_key_create, audit_record, global_sending_set_stopped
from outreach.tenancy.tests.factories import MembershipFactory, TenantFactory
from outreach.webhooks_out.models import WebhookAttempt, WebhookDeliveryOut, WebhookEndpoint, WebhookEvent

PROJECT_APPS = ("tenancy", "ai", "webhooks_out", "contacts", "campaigns", "messaging", "analytics")


def seed_every_admin_model(*, rows: int = 1) -> None:
    """`rows` rows (at least) of every model the admin registers, linked like real data."""
    for i in range(rows):
        tenant = TenantFactory()
        MembershipFactory(tenant=tenant)
        api_key_create(tenant=tenant, role="admin", name=f"key {i}")
        endpoint = WebhookEndpoint.objects.create(tenant=tenant, url="https://crm.example/h", secret="whsec_x",
                                                  event_types=["import.finished"])
        event = WebhookEvent.objects.create(tenant=tenant, type="import.finished", data={}, occurred_at=clock.now())
        out = WebhookDeliveryOut.objects.create(tenant=tenant, event=event, endpoint=endpoint,
                                                next_attempt_at=clock.now())
        WebhookAttempt.objects.create(delivery=out, attempted_at=clock.now(), status_code=500, error="HTTP 500")
        IdempotencyRecord.objects.create(tenant=tenant, key=f"seed-{i}", fingerprint="0" * 64, method="POST",
                                         path="/api/v1/leads", status_code=201, response_body={"id": 1},
                                         expires_at=clock.now() + dt.timedelta(hours=24))
        audit_record(tenant=tenant, action="tenant.pause", target=tenant, detail={"reason": "seed"})
        AICall.objects.create(tenant=tenant, purpose="plan", model="gpt-4o-mini", prompt_tokens=900,
                              completion_tokens=400, cost_usd="0.000375", duration_ms=1200)
        AIBudgetAlert.objects.create(tenant=tenant, month=dt.date(2026, 1, 1), spend_usd="10.5", budget_usd="10",
                                     recipients="owner@example.com")
        AITenantMonthSpend.objects.create(tenant=tenant, month=dt.date(2026, 1 + i % 12, 1), spend_usd="10.5")

        # A real enrolment: the example plan stored and started (its transition and first outbox row).
        contact_campaign = started_contact_campaign(tenant=tenant)
        contact = contact_campaign.contact
        ContactChannelFactory(contact=contact, tenant=tenant)
        EmailValidationResultFactory(tenant=tenant)
        ImportJob.objects.create(tenant=tenant, filename="leads.csv", content=f"email\n{contact.email}\n",
                                 status="done", total_rows=1, processed_rows=1, imported_rows=1)
        # A second, older plan version (the pages list every version, not only the current one).
        CampaignPlanVersionFactory(contact_campaign=contact_campaign, tenant=tenant, version=99)
        ScheduledActionFactory(contact_campaign=contact_campaign, tenant=tenant)
        CampaignTransitionFactory(contact_campaign=contact_campaign, tenant=tenant)

        sender = contact_campaign.campaign.sender_identity
        message = OutboundMessageFactory(tenant=tenant, contact=contact, contact_campaign=contact_campaign,
                                         sender_identity=sender, status="sent", sent_at=clock.now(),
                                         provider_message_id=f"sg-{contact.pk}")
        delivery = WebhookDeliveryFactory()
        MessageEventFactory(tenant=tenant, outbound_message=message, webhook_delivery=delivery)
        MessageEventFactory(tenant=tenant, outbound_message=message, event_type="open", is_machine=True)
        InboundMessageFactory(tenant=tenant, outbound_message=message, webhook_delivery=delivery)
        CommunicationSuppressionFactory(tenant=tenant)
        ContactUnsubscribeFactory(tenant=tenant, contact=contact)
        SendRateLimitFactory(tenant=tenant)
        TenantAnalyticsSettingsFactory(tenant=tenant)
        DeliverabilityAlertFactory(tenant=tenant, sender_id=sender.pk)
        for name, key in ROLLUP_KEYS.items():  # ids made unique per tenant (rollups hold plain ids)
            getattr(analytics_models, name).objects.create(**{
                k: message.pk if k == "message_id" else tenant.pk if k.endswith("_id") else v for k, v in key.items()})

        n = tenant.pk  # unique across calls, for the tables with unique columns
        Group.objects.create(name=f"operators {tenant.slug}")
        interval = IntervalSchedule.objects.create(every=10 + n, period=IntervalSchedule.SECONDS)
        CrontabSchedule.objects.create(minute=str(n % 60), hour=str(n % 24))
        SolarSchedule.objects.create(event="sunrise", latitude="52.52", longitude=f"{n % 180}.40")
        ClockedSchedule.objects.create(clocked_time=clock.now() + dt.timedelta(days=n))
        PeriodicTask.objects.create(name=f"ping {tenant.slug}", task="analytics.ping", interval=interval,
                                    args=f'["{tenant.slug}"]')
        # django-axes' admin login records (admin login throttling).
        who = {"username": f"ops{n}", "ip_address": "192.0.2.7", "user_agent": "seed", "path_info": "/admin/login/"}
        AccessAttempt.objects.create(**who, get_data="", post_data="", failures_since_start=3)
        AccessLog.objects.create(**who)
        AccessFailureLog.objects.create(**who, locked_out=False)
    global_sending_set_stopped(stopped=False, reason="seed")


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_project_model_is_in_the_operator_console():
    unregistered = [m._meta.label for m in apps.get_models()
                    if m._meta.app_label in PROJECT_APPS and not admin.site.is_registered(m)]
    assert unregistered == [], "register these in their app's admin.py"


@pytest.mark.django_db
def test_every_admin_page_renders_with_data(admin_client, admin_user, rf):
    seed_every_admin_model(rows=2)
    request = rf.get("/admin/")
    request.user = admin_user

    for model, model_admin in _registered():
        label = model._meta.label
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"{label}: seed_every_admin_model made no row; extend it"

        changelist = admin_client.get(_url(model, "changelist"))
        assert changelist.status_code == 200, label
        assert changelist.context["cl"].result_count >= 1, label

        if model_admin.get_search_fields(request):
            searched = admin_client.get(_url(model, "changelist"), {"q": "acme.example"})
            assert searched.status_code == 200, f"{label} search"

        # Every filter, with its first real choice applied (choice 0 is "All").
        for spec in changelist.context["cl"].filter_specs:
            choices = list(spec.choices(changelist.context["cl"]))
            if len(choices) > 1:
                filtered = admin_client.get(_url(model, "changelist") + choices[1]["query_string"])
                assert filtered.status_code == 200, f"{label} filter {spec.title}"

        change = admin_client.get(_url(model, "change", obj.pk))
        assert change.status_code == 200, label

        if model_admin.has_add_permission(request):
            add = admin_client.get(_url(model, "add"))
            assert add.status_code == 200, label


def _changelist_queries(client, model) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(_url(model, "changelist")).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_project_changelists_run_the_same_queries_for_one_row_or_many(admin_client):
    seed_every_admin_model(rows=1)
    models = [m for m, _ in _registered() if m._meta.app_label in PROJECT_APPS]
    few = {m._meta.label: _changelist_queries(admin_client, m) for m in models}
    seed_every_admin_model(rows=4)
    many = {m._meta.label: _changelist_queries(admin_client, m) for m in models}
    assert many == few  # a query per row (missing list_select_related) shows up as a difference


READ_ONLY_MODELS = ["tenancy.AuditEntry", "ai.AICall", "ai.AIBudgetAlert", "ai.AITenantMonthSpend",
                    "campaigns.CampaignTransition", "messaging.MessageEvent", "messaging.WebhookDelivery"]


def test_append_only_tables_use_the_read_only_admin():
    registered = {m._meta.label: ma for m, ma in admin.site._registry.items()}
    for label in READ_ONLY_MODELS:
        assert isinstance(registered[label], ReadOnlyAdmin), label


@pytest.mark.django_db
@pytest.mark.parametrize("label", READ_ONLY_MODELS)
def test_append_only_rows_cannot_be_added_changed_or_deleted_from_the_admin(admin_client, label):
    seed_every_admin_model(rows=1)
    model = next(m for m, _ in _registered() if m._meta.label == label)
    obj = model._default_manager.first()
    before = model._default_manager.count()

    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.post(_url(model, "add"), {}).status_code == 403
    assert admin_client.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    bulk = admin_client.post(_url(model, "changelist"),
                             {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)  # the action is simply not offered
    assert model._default_manager.count() == before

    page = admin_client.get(_url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page


@pytest.mark.django_db
def test_deleting_a_contact_from_the_admin_takes_its_history_and_keeps_its_unsubscribe(admin_client):
    contact_campaign = ContactCampaignFactory(status="active", current_node_id="email_intro")
    contact = contact_campaign.contact
    CampaignTransitionFactory(contact_campaign=contact_campaign, tenant=contact.tenant)
    OutboundMessageFactory(tenant=contact.tenant, contact=contact, contact_campaign=contact_campaign)
    ContactUnsubscribeFactory(tenant=contact.tenant, channel_value=contact.email, contact=contact)

    confirm = admin_client.get(_url(Contact, "delete", contact.pk))
    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    response = admin_client.post(_url(Contact, "delete", contact.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not CampaignTransition.objects.filter(contact_campaign_id=contact_campaign.pk).exists()
    assert ContactUnsubscribe.objects.get(channel_value=contact.email).contact_id is None


@pytest.mark.django_db
def test_pausing_a_sender_identity_from_the_admin_is_confirmed_and_audited(admin_client, admin_user):
    identity = EmailSenderIdentityFactory()
    form = {"action": "pause_sending", "_selected_action": [identity.pk]}

    confirm = admin_client.post(_url(EmailSenderIdentity, "changelist"), form)
    assert confirm.status_code == 200
    assert not EmailSenderIdentity.objects.get(pk=identity.pk).is_paused

    response = admin_client.post(_url(EmailSenderIdentity, "changelist"), {**form, "post": "yes"})

    assert response.status_code == 302
    identity.refresh_from_db()
    assert identity.is_paused
    entry = AuditEntry.objects.get(action="sender.pause")
    assert (entry.actor, entry.target_id, entry.tenant) == (admin_user, str(identity.pk), identity.tenant)


@pytest.mark.django_db
def test_unpausing_a_sender_from_its_change_page_is_audited(admin_client, admin_user):
    identity = EmailSenderIdentityFactory(is_paused=True)
    switch = reverse("admin:messaging_emailsenderidentity_switch", args=[identity.pk, "resume_sending"])

    assert switch in admin_client.get(_url(EmailSenderIdentity, "change", identity.pk)).content.decode()
    response = admin_client.post(switch)

    assert response.status_code == 302, response.content[:2000]
    identity.refresh_from_db()
    assert not identity.is_paused
    assert AuditEntry.objects.filter(action="sender.resume", actor=admin_user).count() == 1


@pytest.mark.django_db
def test_every_switch_confirmation_page_renders_and_a_get_changes_nothing(admin_client, admin_user, rf):
    seed_every_admin_model(rows=1)
    audit_before = AuditEntry.objects.count()
    request = rf.get("/admin/")
    request.user = admin_user
    shown = []

    for model, model_admin in _registered():
        if not isinstance(model_admin, SwitchesAdminMixin):
            continue
        for obj in model._default_manager.order_by("pk"):
            for switch in model_admin.switches:
                response = admin_client.get(_url(model, "switch", obj.pk, switch.name))
                if switch.applies(obj):
                    assert response.status_code == 200, (model._meta.label, switch.name)
                    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
                    shown.append((model._meta.label, switch.name))
                else:
                    assert response.status_code == 302, (model._meta.label, switch.name)
            bulk = [s for s in model_admin.switches if s.bulk]
            for switch in bulk:  # the bulk form's first POST is its confirmation page
                assert switch.name in model_admin.get_actions(request), (model._meta.label, switch.name)
                response = admin_client.post(_url(model, "changelist"),
                                             {"action": switch.name, "_selected_action": [obj.pk]})
                assert response.status_code == 200, (model._meta.label, switch.name)

    for stop_or_resume in ("stop", "resume"):
        assert admin_client.get(reverse(f"admin:tenancy_globalsendingswitch_{stop_or_resume}")).status_code == 200
    assert {label for label, _ in shown} >= {"tenancy.Tenant", "campaigns.Campaign", "campaigns.ContactCampaign",
                                             "messaging.EmailSenderIdentity", "messaging.CommunicationSuppression"}
    assert AuditEntry.objects.count() == audit_before  # nothing flipped


@pytest.mark.django_db
def test_the_index_shows_the_console_with_data(admin_client):
    seed_every_admin_model(rows=2)

    page = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="operator-console"' in page and "Sending is allowed." in page
    assert "Paused tenants:" in page and "Flower" in page and reverse("api-docs") in page


@pytest.mark.django_db
def test_the_seeded_contact_campaign_page_shows_its_plan_and_timeline(admin_client):
    seed_every_admin_model(rows=1)
    contact_campaign = ContactCampaign.objects.get()

    response = admin_client.get(_url(ContactCampaign, "change", contact_campaign.pk))

    body = response.content.decode()
    assert 'class="plan-step current-node" id="step-email_intro"' in body
    assert "no open after 3 days → email_bump" in body
    kinds = [row["kind"] for row in response.context["timeline"]]
    assert kinds.count("transition") >= 2 and "message" in kinds and "event" in kinds and "reply" in kinds


class _EveryTableIsBig(EstimatedCountPaginator):
    exact_below = 0
    count_timeout_ms = 100


def _statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_an_unfiltered_changelist_of_a_big_table_uses_the_planners_estimate_not_count():
    ContactFactory.create_batch(2)
    with connection.cursor() as cursor:
        # What ANALYZE would record for a table of 1.2M rows.
        cursor.execute("UPDATE pg_class SET reltuples = 1200000 WHERE oid = 'contacts'::regclass")

    before = _statement_timeout()

    assert EstimatedCountPaginator(Contact.objects.order_by("-id"), 50).count == 1_200_000
    assert EstimatedCountPaginator(Contact.objects.filter(tenant__isnull=False).order_by("-id"), 50).count == 2
    assert _statement_timeout() == before  # the short timeout of the filtered count did not stay behind


@pytest.mark.django_db
def test_a_small_table_is_counted_exactly():
    ContactFactory.create_batch(3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_class SET reltuples = 40 WHERE oid = 'contacts'::regclass")

    assert EstimatedCountPaginator(Contact.objects.order_by("-id"), 50).count == 3


@pytest.mark.django_db
def test_a_filtered_count_that_runs_too_long_falls_back_to_an_estimate_and_leaves_the_session_usable(caplog):
    caplog.set_level("INFO", logger="outreach.admin")
    ContactFactory.create_batch(2)
    before = _statement_timeout()
    slow = Contact.objects.filter(tenant__isnull=False).extra(where=["pg_sleep(0.3) IS NOT NULL"]).order_by("-id")

    count = _EveryTableIsBig(slow, 50).count

    assert isinstance(count, int) and count >= 0
    assert "timed out; using the planner's estimate" in caplog.text
    assert _statement_timeout() == before
    assert Contact.objects.count() == 2  # the transaction was not poisoned by the cancelled count


@pytest.mark.django_db
def test_a_campaign_cannot_use_another_tenants_sender_identity(admin_client):
    tenant, other = TenantFactory(), TenantFactory()
    foreign_sender = EmailSenderIdentityFactory(tenant=other)
    own_sender = EmailSenderIdentityFactory(tenant=tenant)
    form = {"tenant": tenant.pk, "name": "Q1", "status": "draft", "allowed_link_domains": "[]",
            "goal": "", "offer": "", "ai_instructions": ""}

    refused = admin_client.post(_url(Campaign, "add"), {**form, "sender_identity": foreign_sender.pk})
    accepted = admin_client.post(_url(Campaign, "add"), {**form, "sender_identity": own_sender.pk})

    assert refused.status_code == 200
    assert "belongs to another tenant" in refused.content.decode()
    assert accepted.status_code == 302, accepted.content.decode()[:3000]
    assert list(Campaign.objects.values_list("sender_identity", flat=True)) == [own_sender.pk]


@pytest.mark.django_db
def test_a_contact_cannot_be_attached_to_another_tenants_lead(admin_client):
    contact = ContactFactory()
    foreign_lead = LeadFactory()
    form = {"tenant": contact.tenant_id, "lead": foreign_lead.pk, "email": contact.email, "first_name": "",
            "last_name": "", "title": "", "phone": "", "timezone": "", "language": "",
            "channels-TOTAL_FORMS": "0", "channels-INITIAL_FORMS": "0"}

    response = admin_client.post(_url(Contact, "change", contact.pk), form)

    assert response.status_code == 200
    assert "belongs to another tenant" in response.content.decode()
    contact.refresh_from_db()
    assert contact.lead_id != foreign_lead.pk


@pytest.mark.django_db
def test_a_channel_added_on_the_contact_page_belongs_to_the_contacts_tenant(admin_client):
    contact = ContactFactory()
    form = {"tenant": contact.tenant_id, "lead": contact.lead_id, "email": contact.email, "first_name": "Dana",
            "last_name": "", "title": "", "phone": "", "timezone": "", "language": "",
            "channels-TOTAL_FORMS": "1", "channels-INITIAL_FORMS": "0",
            "channels-0-channel": "sms", "channels-0-value": "+14155550100", "channels-0-is_primary": "on"}

    response = admin_client.post(_url(Contact, "change", contact.pk), form)

    assert response.status_code == 302, response.content.decode()[:3000]
    channel = contact.channels.get()
    assert (channel.tenant_id, channel.channel, channel.value) == (contact.tenant_id, "sms", "+14155550100")
