"""Campaigns over the API: the brief, enrolment, pause/resume/cancel, metrics."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns.models import Campaign, ContactCampaign
from campaigns.tests.factories import (
    CampaignFactory,
    ContactCampaignFactory,
    example_plan,
    freeze_clock,
    purge_queues,
    queued_tasks,
)
from contacts.tests.factories import ContactFactory, LeadFactory
from messaging.tests.factories import (
    ContactUnsubscribeFactory,
    EmailSenderIdentityFactory,
    InboundMessageFactory,
    MessageEventFactory,
    OutboundMessageFactory,
)
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client, error_fields

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # a Monday morning in Los Angeles


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.MEMBER)


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


# --- the brief ---------------------------------------------------------------------------------------------------

def test_create_a_brief(client, tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    response = client.post("/api/v1/campaigns", {
        "name": " Q1 push ", "goal": "Book a demo", "offer": "Free pilot", "ai_instructions": "Be brief",
        "sender_identity": sender.pk, "allowed_link_domains": ["https://www.Seller.example/pricing", "seller.example"],
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["status"], body["sender_identity"]) == ("Q1 push", "active", sender.pk)
    assert body["allowed_link_domains"] == ["seller.example"]


@pytest.mark.parametrize("payload, field", [
    ({}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "Q1", "allowed_link_domains": ["not a domain"]}, "allowed_link_domains"),
    ({"name": "Q1", "allowed_link_domains": "seller.example"}, "allowed_link_domains"),
    ({"name": "Q1", "sender_identity": 999999}, "sender_identity"),
    ({"name": "Q1", "goal": None}, "goal"),
    ({"name": "Q1", "goal": "A demo", "offer": ""}, "offer"),
])
def test_invalid_brief_is_a_400_naming_the_field(client, payload, field):
    # A complete brief but for the field at fault (None: the field is left out).
    payload = {k: v for k, v in {"goal": "A demo", "offer": "Faster onboarding", **payload}.items() if v is not None}
    response = client.post("/api/v1/campaigns", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()


def test_a_sender_identity_of_another_tenant_reads_as_unknown(client, other_tenant):
    foreign = EmailSenderIdentityFactory(tenant=other_tenant)
    response = client.post("/api/v1/campaigns", {"name": "Q1", "sender_identity": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "sender_identity" in error_fields(response)


def test_status_is_changed_only_through_the_actions(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    response = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": "canceled", "goal": "New"}, format="json")
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert (campaign.status, campaign.goal) == ("active", "New")


def test_filter_by_status(client, tenant):
    paused = CampaignFactory(tenant=tenant, status="paused")
    CampaignFactory(tenant=tenant, status="active")
    assert [r["id"] for r in client.get("/api/v1/campaigns?status=paused").json()["results"]] == [paused.pk]
    assert client.get("/api/v1/campaigns?status=nope").status_code == 400


@pytest.mark.parametrize("n", [2, 9])
def test_list_query_count_does_not_grow_with_rows(client, tenant, n, django_assert_num_queries):
    CampaignFactory.create_batch(n, tenant=tenant)
    with django_assert_num_queries(2):  # API key, campaigns page
        response = client.get("/api/v1/campaigns")
    assert len(response.json()["results"]) == n


# --- enrolment ---------------------------------------------------------------------------------------------------

def test_enrol_contacts_with_a_plan_starts_them(client, tenant, monkeypatch):
    freeze_clock(monkeypatch, T0)
    campaign = CampaignFactory(tenant=tenant)
    contacts = ContactFactory.create_batch(3, tenant=tenant)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol",
                           {"contact_ids": [c.pk for c in contacts], "plan": example_plan()}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["enrolled"] == 3
    assert {(r["contact"], r["status"], r["current_node_id"], r["plan_version"]) for r in body["contact_campaigns"]} \
        == {(c.pk, "active", "email_intro", 1) for c in contacts}


def test_enrol_twice_does_not_duplicate(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    for _ in range(2):
        client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"contact_ids": [contact.pk], "plan": example_plan()},
                    format="json")
    assert ContactCampaign.objects.filter(campaign=campaign).count() == 1


def test_enrol_by_lead_takes_every_contact_of_the_lead(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    lead = LeadFactory(tenant=tenant)
    contacts = ContactFactory.create_batch(2, tenant=tenant, lead=lead)
    ContactFactory(tenant=tenant)  # another lead's
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"lead_ids": [lead.pk], "plan": example_plan()},
                           format="json")
    assert response.status_code == 201, response.content
    assert {r["contact"] for r in response.json()["contact_campaigns"]} == {c.pk for c in contacts}


def test_enrol_without_a_plan_asks_the_ai_after_commit(client, tenant, django_capture_on_commit_callbacks):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"contact_ids": [contact.pk]},
                               format="json")
    assert response.status_code == 201, response.content
    [enrolment] = response.json()["contact_campaigns"]
    assert enrolment["status"] == "pending"
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans", [[enrolment["id"]]])]


def test_an_invalid_plan_is_a_400_listing_every_problem(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    plan = example_plan()
    plan["startNodeId"] = "nowhere"
    plan["timezone"] = "Mars/Olympus"
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"contact_ids": [contact.pk], "plan": plan},
                           format="json")
    assert response.status_code == 400
    problems = response.json()["errors"]
    assert {p["field"] for p in problems} >= {"plan.startNodeId", "plan.timezone"}
    assert all(p["message"] for p in problems)
    assert not ContactCampaign.objects.exists()


@pytest.mark.parametrize("payload, field", [
    ({}, "contact_ids"),
    ({"contact_ids": ["x"]}, "contact_ids"),
    ({"contact_ids": [999999]}, "contact_ids"),
    ({"lead_ids": [999999]}, "lead_ids"),
])
def test_bad_enrol_input_is_a_400_naming_the_field(client, tenant, payload, field):
    campaign = CampaignFactory(tenant=tenant)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()


def test_contacts_of_another_tenant_cannot_be_enrolled(client, tenant, other_tenant):
    campaign = CampaignFactory(tenant=tenant)
    foreign = ContactFactory(tenant=other_tenant)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"contact_ids": [foreign.pk]}, format="json")
    assert response.status_code == 400
    assert "contact_ids" in error_fields(response)
    assert not ContactCampaign.objects.exists()


def test_a_canceled_campaign_takes_no_contacts(client, tenant):
    campaign = CampaignFactory(tenant=tenant, status="canceled")
    contact = ContactFactory(tenant=tenant)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol", {"contact_ids": [contact.pk]}, format="json")
    assert response.status_code == 409


# --- pause, resume, cancel ---------------------------------------------------------------------------------------

def test_pause_resume_cancel(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    running = ContactCampaignFactory(tenant=tenant, campaign=campaign, status="pending")
    url = f"/api/v1/campaigns/{campaign.pk}"
    assert client.post(f"{url}/pause", {"reason": "holiday"}, format="json").json()["status"] == "paused"
    assert client.post(f"{url}/resume").json()["status"] == "active"
    assert client.post(f"{url}/cancel").json()["status"] == "canceled"
    running.refresh_from_db()
    assert running.status == "canceled"
    response = client.post(f"{url}/resume")
    assert response.status_code == 409
    assert Campaign.objects.get(pk=campaign.pk).status == "canceled"


# --- metrics -----------------------------------------------------------------------------------------------------

def _message(cc, node_id: str, *, sent: bool = True, **kwargs):
    return OutboundMessageFactory(
        tenant=cc.tenant, contact_campaign=cc, contact=cc.contact, node_id=node_id, to_address=cc.contact.email,
        status="sent" if sent else "queued", sent_at=T0 if sent else None, **kwargs,
    )


def test_metrics_count_each_message_once_and_only_human_engagement(client, tenant, other_tenant):
    campaign = CampaignFactory(tenant=tenant)
    a, b, c = (ContactCampaignFactory(tenant=tenant, campaign=campaign, status="active", current_node_id="x")
               for _ in range(3))
    intro_a, intro_b, intro_c = _message(a, "email_intro"), _message(b, "email_intro"), _message(c, "email_intro")
    bump_a = _message(a, "email_bump")
    _message(b, "email_bump", sent=False)  # queued, not sent yet

    def ev(message, kind, **kw):
        return MessageEventFactory(tenant=tenant, outbound_message=message, event_type=kind, occurred_at=T0, **kw)

    for m in (intro_a, intro_b, intro_c, bump_a):
        ev(m, "delivered")
    ev(intro_a, "open"), ev(intro_a, "open")  # two opens of one message count once
    ev(intro_b, "open", is_machine=True)  # Apple MPP: not a human
    ev(intro_a, "click"), ev(intro_c, "click", is_machine=True)
    ev(bump_a, "bounce", bounce_type="hard")
    InboundMessageFactory(tenant=tenant, outbound_message=intro_b)
    InboundMessageFactory(tenant=tenant, outbound_message=intro_c, is_auto_reply=True)  # out of office
    # Issue 11: a bounce notice through Inbound Parse and a held (unauthenticated) or discarded reply are not replies.
    InboundMessageFactory(tenant=tenant, outbound_message=bump_a, kind="bounce", bounce_type="hard")
    InboundMessageFactory(tenant=tenant, outbound_message=intro_a, review_status="held", verdict="unauthenticated")
    InboundMessageFactory(tenant=tenant, outbound_message=intro_c, review_status="discarded", verdict="spam")
    ContactUnsubscribeFactory(tenant=tenant, channel_value=c.contact.email)
    ContactUnsubscribeFactory(tenant=other_tenant, channel_value=a.contact.email)  # not this tenant's opt-out
    # Another campaign's traffic never counts here.
    other = ContactCampaignFactory(tenant=tenant, status="active", current_node_id="x")
    ev(_message(other, "email_intro"), "open")

    response = client.get(f"/api/v1/campaigns/{campaign.pk}/metrics")
    assert response.status_code == 200
    body = response.json()
    assert body["totals"] == {"queued": 5, "sent": 4, "delivered": 4, "human_opens": 1, "human_clicks": 1,
                              "replies": 1, "bounces": 1, "spam_reports": 0, "unsubscribes": 1}
    by_node = {row["node_id"]: row for row in body["by_node"]}
    assert (by_node["email_intro"]["sent"], by_node["email_intro"]["human_opens"],
            by_node["email_intro"]["unsubscribes"]) == (3, 1, 1)
    assert (by_node["email_bump"]["queued"], by_node["email_bump"]["sent"], by_node["email_bump"]["bounces"]) \
        == (2, 1, 1)
    assert body["contact_campaigns"]["active"] == 3


def test_metrics_of_an_empty_campaign_are_zero(client, tenant, django_assert_num_queries):
    campaign = CampaignFactory(tenant=tenant)
    with django_assert_num_queries(4):  # API key, campaign, metrics statement, enrolments by status
        body = client.get(f"/api/v1/campaigns/{campaign.pk}/metrics").json()
    assert body["by_node"] == [] and set(body["totals"].values()) == {0}


def test_every_problem_of_a_brief_is_reported_at_once(client):
    response = client.post("/api/v1/campaigns", {"name": "", "goal": "", "offer": ""}, format="json")
    assert response.status_code == 400
    assert error_fields(response) == {"name", "goal", "offer"}


def test_enrolling_again_reports_who_already_was_and_answers_200(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    old, new = ContactFactory.create_batch(2, tenant=tenant)
    url = f"/api/v1/campaigns/{campaign.pk}/enrol"
    first = client.post(url, {"contact_ids": [old.pk], "plan": example_plan()}, format="json")
    assert first.status_code == 201 and first.json()["enrolled_now"] == [old.pk]
    again = client.post(url, {"contact_ids": [old.pk], "plan": example_plan()}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["enrolled_now"] == [] and again.json()["refused"] == []
    [already] = again.json()["already_enrolled"]
    assert already["contact_id"] == old.pk and already["status"] == "active"
    mixed = client.post(url, {"contact_ids": [old.pk, new.pk], "plan": example_plan()}, format="json")
    assert mixed.status_code == 201 and mixed.json()["enrolled_now"] == [new.pk]


def test_an_opted_out_contact_is_refused_with_its_reason(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    ContactUnsubscribeFactory(tenant=tenant, contact=contact, channel="email", channel_value=contact.email)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/enrol",
                           {"contact_ids": [contact.pk], "plan": example_plan()}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["refused"] == [{"contact_id": contact.pk, "reason": "unsubscribed"}]
    assert not ContactCampaign.objects.filter(campaign=campaign).exists()
