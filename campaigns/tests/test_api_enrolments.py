"""One contact's enrolments (plan, node, status, timeline), contact campaigns, and external events."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns.models import CampaignTransition, ContactCampaign
from campaigns.tests.factories import (
    CampaignFactory,
    ContactCampaignFactory,
    example_plan,
    freeze_clock,
    purge_queues,
    queued_tasks,
    started_contact_campaign,
)
from contacts.tests.factories import ContactFactory
from messaging.tests.factories import InboundMessageFactory, MessageEventFactory, OutboundMessageFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client, error_fields

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # a Monday morning in Los Angeles
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.MEMBER)


@pytest.fixture
def clock(monkeypatch):
    return freeze_clock(monkeypatch, T0)


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


def _history(cc: ContactCampaign) -> None:
    """A sent intro with a delivery, a machine open, a human open and a reply, all after the start transition."""
    message = OutboundMessageFactory(tenant=cc.tenant, contact_campaign=cc, contact=cc.contact, node_id="email_intro",
                                     status="sent", sent_at=T0 + 2 * MIN, to_address=cc.contact.email)
    MessageEventFactory(tenant=cc.tenant, outbound_message=message, event_type="open", occurred_at=T0 + 5 * MIN)
    MessageEventFactory(tenant=cc.tenant, outbound_message=message, event_type="delivered", occurred_at=T0 + 3 * MIN)
    MessageEventFactory(tenant=cc.tenant, outbound_message=message, event_type="open", is_machine=True,
                        occurred_at=T0 + 4 * MIN)
    reply = InboundMessageFactory(tenant=cc.tenant, outbound_message=message, classification="positive")
    type(reply).objects.filter(pk=reply.pk).update(received_at=T0 + 6 * MIN)
    CampaignTransition.objects.create(tenant=cc.tenant, contact_campaign=cc, from_node_id="email_intro",
                                      to_node_id="stop_replied", event="reply_positive", node_visit=1,
                                      from_status="active", to_status="completed", occurred_at=T0 + 7 * MIN)


def test_a_contacts_enrolments_show_plan_node_status_and_an_ordered_timeline(client, tenant, clock):
    cc = started_contact_campaign(tenant=tenant)
    OutboundMessageFactory._meta.model.objects.filter(contact_campaign=cc).delete()  # replaced by _history's
    _history(cc)
    response = client.get(f"/api/v1/contacts/{cc.contact_id}/campaigns")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert (row["id"], row["status"], row["current_node_id"], row["plan_version"]) == (cc.pk, "active",
                                                                                         "email_intro", 1)
    assert row["plan"]["startNodeId"] == "email_intro"
    assert row["current_node"]["id"] == "email_intro" and row["current_node"]["type"] == "send"
    kinds = [(item["kind"], item["event"]) for item in row["timeline"]]
    assert kinds == [("transition", "start"), ("message", "sent"), ("event", "delivered"), ("event", "open"),
                     ("event", "open"), ("reply", "reply_positive"), ("transition", "reply_positive")]
    assert row["timeline"][3]["data"]["is_machine"] is True and row["timeline"][4]["data"]["is_machine"] is False
    assert [item["at"] for item in row["timeline"]] == sorted(item["at"] for item in row["timeline"])


def test_a_bounce_notice_read_from_inbound_mail_is_a_bounce_in_the_timeline_not_a_reply(client, tenant, clock):
    cc = started_contact_campaign(tenant=tenant)
    message = OutboundMessageFactory._meta.model.objects.get(contact_campaign=cc)
    InboundMessageFactory(tenant=tenant, outbound_message=message, kind="bounce", bounce_type="hard",
                          from_email="mailer-daemon@mx.example")
    [row] = client.get(f"/api/v1/contacts/{cc.contact_id}/campaigns").json()["results"]
    [notice] = [item for item in row["timeline"] if item["data"].get("reply_id")]
    assert (notice["kind"], notice["event"]) == ("bounce_notice", "bounce_hard")
    assert notice["summary"].startswith("bounce notice from mailer-daemon@mx.example")


@pytest.mark.parametrize("n", [1, 4])
def test_enrolments_query_count_does_not_grow_with_rows(client, tenant, clock, n, django_assert_num_queries):
    contact = ContactFactory(tenant=tenant)
    for _ in range(n):
        cc = started_contact_campaign(tenant=tenant, contact=contact)
        OutboundMessageFactory._meta.model.objects.filter(contact_campaign=cc).delete()
        _history(cc)
    # API key, contact, enrolments page, transitions, messages, events, replies.
    with django_assert_num_queries(7):
        response = client.get(f"/api/v1/contacts/{contact.pk}/campaigns")
    assert len(response.json()["results"]) == n
    assert all(len(row["timeline"]) == 7 for row in response.json()["results"])


def test_enrolments_filter_by_status_and_campaign(client, tenant):
    contact = ContactFactory(tenant=tenant)
    done = ContactCampaignFactory(tenant=tenant, contact=contact, status="completed")
    ContactCampaignFactory(tenant=tenant, contact=contact, status="pending")
    url = f"/api/v1/contacts/{contact.pk}/campaigns"
    assert [r["id"] for r in client.get(f"{url}?status=completed").json()["results"]] == [done.pk]
    assert [r["id"] for r in client.get(f"{url}?campaign={done.campaign_id}").json()["results"]] == [done.pk]
    assert client.get(f"{url}?status=nope").status_code == 400


def test_create_an_enrolment_with_a_plan_starts_it(client, tenant, clock):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns",
                           {"campaign": campaign.pk, "plan": example_plan()}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["contact"], body["campaign"], body["status"], body["current_node_id"], body["plan_source"]) == (
        contact.pk, campaign.pk, "active", "email_intro", "manual")
    assert [item["kind"] for item in body["timeline"]] == ["transition", "message"]  # start, then its message


def test_create_an_enrolment_without_a_plan_asks_the_ai(client, tenant, django_capture_on_commit_callbacks):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns", {"campaign": campaign.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending" and response.json()["plan"] is None
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans", [[response.json()["id"]]])]


def test_create_an_enrolment_with_an_invalid_plan_is_a_400_with_the_problems(client, tenant):
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    plan = example_plan()
    del plan["nodes"][0]["transitions"]
    plan["version"] = "2.0"
    response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns", {"campaign": campaign.pk, "plan": plan},
                           format="json")
    assert response.status_code == 400
    paths = {e["field"] for e in response.json()["errors"]}
    assert "plan.version" in paths and any(p.startswith("plan.nodes[0]") for p in paths)
    assert not ContactCampaign.objects.exists()


@pytest.mark.parametrize("payload, field", [
    ({}, "campaign"),
    ({"campaign": 999999}, "campaign"),
    ({"campaign": "x"}, "campaign"),
    ({"campaign": 1, "plan": "not an object"}, "plan"),
    ({"campaign": 1, "plan": {"version": "1.0", "bad\u0000key": 1}}, "plan"),
])
def test_bad_enrolment_input_is_a_400_naming_the_field(client, tenant, payload, field):
    contact = ContactFactory(tenant=tenant)
    response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()


def test_a_campaign_of_another_tenant_reads_as_unknown(client, tenant, other_tenant):
    contact = ContactFactory(tenant=tenant)
    foreign = CampaignFactory(tenant=other_tenant)
    response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns", {"campaign": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "campaign" in error_fields(response)


# --- contact campaigns -------------------------------------------------------------------------------------------

def test_contact_campaigns_filter_by_status_and_campaign(client, tenant):
    active = ContactCampaignFactory(tenant=tenant, status="active", current_node_id="email_intro")
    ContactCampaignFactory(tenant=tenant, status="pending")
    assert [r["id"] for r in client.get("/api/v1/contact-campaigns?status=active").json()["results"]] == [active.pk]
    assert [r["id"] for r in client.get(f"/api/v1/contact-campaigns?campaign={active.campaign_id}").json()[
        "results"]] == [active.pk]
    assert client.get("/api/v1/contact-campaigns?campaign=abc").status_code == 400


@pytest.mark.parametrize("n", [2, 8])
def test_contact_campaigns_query_count_does_not_grow_with_rows(client, tenant, clock, n, django_assert_num_queries):
    for _ in range(n):
        started_contact_campaign(tenant=tenant)
    with django_assert_num_queries(2):  # API key, page (with campaign and plan version joined)
        response = client.get("/api/v1/contact-campaigns")
    assert len(response.json()["results"]) == n
    assert all(row["plan_version"] == 1 for row in response.json()["results"])


def test_pause_resume_cancel_one_enrolment(client, tenant, clock):
    cc = started_contact_campaign(tenant=tenant)
    url = f"/api/v1/contact-campaigns/{cc.pk}"
    assert client.post(f"{url}/pause").json()["status"] == "paused"
    assert client.post(f"{url}/resume").json()["status"] == "active"
    assert client.post(f"{url}/cancel", {"reason": "asked by sales"}, format="json").json()["status"] == "canceled"
    assert client.post(f"{url}/pause").status_code == 409


# --- external events ---------------------------------------------------------------------------------------------

def _meeting_plan() -> dict:
    plan = example_plan()
    plan["nodes"][0]["transitions"].insert(0, {"on": "meeting_booked", "to": "stop_done"})
    return plan


def test_meeting_booked_moves_the_plan(client, tenant, clock):
    cc = started_contact_campaign(plan=_meeting_plan(), tenant=tenant)
    response = client.post(f"/api/v1/contact-campaigns/{cc.pk}/events", {"type": "meeting_booked",
                                                                        "detail": {"calendar": "cal-123"}},
                           format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "moved"
    assert (body["contact_campaign"]["status"], body["contact_campaign"]["current_node_id"]) == ("completed",
                                                                                                 "stop_done")
    transition = CampaignTransition.objects.filter(contact_campaign=cc, event="meeting_booked").get()
    assert transition.to_node_id == "stop_done"


def test_an_event_the_plan_does_not_handle_is_recorded_and_moves_nothing(client, tenant, clock):
    cc = started_contact_campaign(tenant=tenant)
    body = client.post(f"/api/v1/contact-campaigns/{cc.pk}/events", {"type": "meeting_booked"}, format="json").json()
    assert body["contact_campaign"]["current_node_id"] == "email_intro"
    assert body["contact_campaign"]["status"] == "active"


@pytest.mark.parametrize("payload, field", [
    ({"type": "unsubscribe"}, "type"),
    ({"type": "no_reply"}, "type"),
    ({"type": "sent"}, "type"),
    ({}, "type"),
    ({"type": "meeting_booked", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    ({"type": "meeting_booked", "detail": ["not", "an", "object"]}, "detail"),
])
def test_events_an_integration_may_not_post_are_a_400(client, tenant, clock, payload, field):
    cc = started_contact_campaign(tenant=tenant)
    response = client.post(f"/api/v1/contact-campaigns/{cc.pk}/events", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()
    assert not CampaignTransition.objects.filter(contact_campaign=cc).exclude(event="start").exists()


@pytest.mark.parametrize("return_date, message", [
    ("9999-12-31T23:00:00-12:00", "at most 180 days ahead"),  # once a 500: astimezone overflowed
    ("9999-12-31", "at most 180 days ahead"),
    ("2999-01-01", "at most 180 days ahead"),  # once accepted: the contact was parked for 973 years
    ("2026-08-30", "at most 180 days ahead"),  # T0 + 181 days
    ("2026-02-27", "in the past"),
    ("next monday", "a date (YYYY-MM-DD)"),
    (20260316, "a date (YYYY-MM-DD)"),
])
def test_an_out_of_office_return_date_out_of_range_is_a_400_naming_detail_return_date(
        client, tenant, clock, return_date, message):
    cc = started_contact_campaign(tenant=tenant)
    client.raise_request_exception = False
    response = client.post(f"/api/v1/contact-campaigns/{cc.pk}/events",
                           {"type": "reply_ooo", "detail": {"return_date": return_date}}, format="json")
    assert response.status_code == 400, response.content
    [problem] = response.json()["errors"]
    assert problem["field"] == "detail.return_date" and message in problem["message"]
    cc.refresh_from_db()
    assert cc.not_before is None
    assert not CampaignTransition.objects.filter(contact_campaign=cc).exclude(event="start").exists()


@pytest.mark.parametrize("return_date, not_before", [
    ("2026-08-29", dt.datetime(2026, 8, 29, 7, 0, tzinfo=dt.UTC)),  # T0 + 180 days, midnight PDT
    ("2026-03-16T09:00:00+01:00", dt.datetime(2026, 3, 16, 8, 0, tzinfo=dt.UTC)),
    (None, None),
])
def test_an_out_of_office_return_date_in_range_pushes_the_next_send(client, tenant, clock, return_date, not_before):
    cc = started_contact_campaign(tenant=tenant)
    response = client.post(f"/api/v1/contact-campaigns/{cc.pk}/events",
                           {"type": "reply_ooo", "detail": {"return_date": return_date}}, format="json")
    assert response.status_code == 200, response.content
    cc.refresh_from_db()
    assert (cc.status, cc.not_before) == ("active", not_before)
