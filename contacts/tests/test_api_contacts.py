"""Contacts over the API: normalisation, channels, filters, opt-out marking, query counts."""
from __future__ import annotations

import pytest

from campaigns.tests.factories import ContactCampaignFactory
from contacts.models import Contact, ContactChannel
from contacts.tests.factories import ContactFactory, LeadFactory
from messaging.tests.factories import CommunicationSuppressionFactory, ContactUnsubscribeFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client, error_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.MEMBER)


def test_create_normalises_email_and_phone_and_creates_channel_rows(client, tenant):
    lead = LeadFactory(tenant=tenant)
    response = client.post("/api/v1/contacts", {
        "lead": lead.pk, "first_name": "Dana", "email": "  Dana.Smith@ACME.Example ", "phone": "+49 (151) 234-5678",
        "timezone": "Europe/Berlin", "language": "de",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "dana.smith@acme.example"
    assert body["phone"] == "+491512345678"
    assert body["is_unsubscribed"] is False and body["send_block_reason"] is None
    channels = set(ContactChannel.objects.filter(contact_id=body["id"]).values_list("channel", "value"))
    assert channels == {("email", "dana.smith@acme.example"), ("sms", "+491512345678")}


@pytest.mark.parametrize("payload, field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b.example", "timezone": "Mars/Olympus"}, "timezone"),
    ({"email": "a@b.example", "language": "english please"}, "language"),
    ({"phone": "12"}, "phone"),
    ({"first_name": "No Address"}, "email"),
    ({"email": "a@b.example", "lead": 999999}, "lead"),
    ({"email": "a@b.example", "first_name": "x" * 101}, "first_name"),
])
def test_invalid_input_is_a_400_naming_the_field(client, payload, field):
    response = client.post("/api/v1/contacts", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()
    assert Contact.objects.count() == 0


def test_a_lead_of_another_tenant_reads_as_unknown(client, other_tenant):
    foreign = LeadFactory(tenant=other_tenant)
    response = client.post("/api/v1/contacts", {"email": "a@b.example", "lead": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "lead" in error_fields(response)


def test_a_second_contact_with_the_same_address_is_refused(client, tenant):
    ContactFactory(tenant=tenant, email="dana@acme.example")
    response = client.post("/api/v1/contacts", {"email": "DANA@acme.example"}, format="json")
    assert response.status_code == 400
    assert "email" in error_fields(response)


def test_the_same_address_in_another_tenant_is_fine(client, other_tenant):
    ContactFactory(tenant=other_tenant, email="dana@acme.example")
    assert client.post("/api/v1/contacts", {"email": "dana@acme.example"}, format="json").status_code == 201


def test_changing_the_email_replaces_its_channel_row(client, tenant):
    contact = ContactFactory(tenant=tenant, email="old@acme.example")
    ContactChannel.objects.create(tenant=tenant, contact=contact, channel="email", value="old@acme.example")
    response = client.patch(f"/api/v1/contacts/{contact.pk}", {"email": "New@Acme.example"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "new@acme.example"
    assert list(contact.channels.values_list("value", flat=True)) == ["new@acme.example"]


def test_a_partial_update_cannot_leave_a_contact_unreachable(client, tenant):
    contact = ContactFactory(tenant=tenant, email="only@acme.example", phone="")
    response = client.patch(f"/api/v1/contacts/{contact.pk}", {"email": ""}, format="json")
    assert response.status_code == 400
    assert "email" in error_fields(response)


def test_unsubscribed_and_suppressed_contacts_are_marked(client, tenant):
    opted_out = ContactFactory(tenant=tenant, email="gone@acme.example")
    bounced = ContactFactory(tenant=tenant, email="bounced@acme.example")
    fine = ContactFactory(tenant=tenant, email="fine@acme.example")
    ContactUnsubscribeFactory(tenant=tenant, channel_value="gone@acme.example")
    CommunicationSuppressionFactory(tenant=tenant, value="bounced@acme.example", reason="hard_bounce")
    rows = {row["id"]: row for row in client.get("/api/v1/contacts").json()["results"]}
    assert rows[opted_out.pk]["is_unsubscribed"] is True
    assert rows[opted_out.pk]["send_block_reason"] == "unsubscribed"
    assert rows[bounced.pk]["is_unsubscribed"] is False
    assert rows[bounced.pk]["send_block_reason"] == "suppressed:hard_bounce"
    assert rows[fine.pk]["send_block_reason"] is None
    assert client.get(f"/api/v1/contacts/{opted_out.pk}").json()["is_unsubscribed"] is True


def test_an_opt_out_in_another_tenant_does_not_mark_the_contact(client, tenant, other_tenant):
    contact = ContactFactory(tenant=tenant, email="dana@acme.example")
    ContactUnsubscribeFactory(tenant=other_tenant, channel_value="dana@acme.example")
    assert client.get(f"/api/v1/contacts/{contact.pk}").json()["is_unsubscribed"] is False


def test_filters_by_lead_email_and_text(client, tenant):
    lead = LeadFactory(tenant=tenant)
    dana = ContactFactory(tenant=tenant, lead=lead, email="dana@acme.example", first_name="Dana")
    ContactFactory(tenant=tenant, email="sam@other.example", first_name="Sam")
    assert [r["id"] for r in client.get(f"/api/v1/contacts?lead={lead.pk}").json()["results"]] == [dana.pk]
    assert [r["id"] for r in client.get("/api/v1/contacts?email=DANA@acme.example").json()["results"]] == [dana.pk]
    assert [r["id"] for r in client.get("/api/v1/contacts?q=dan").json()["results"]] == [dana.pk]
    assert client.get("/api/v1/contacts?email=not-an-address").json()["results"] == []


def test_a_malformed_filter_is_a_400_naming_the_parameter(client):
    response = client.get("/api/v1/contacts?lead=abc")
    assert response.status_code == 400
    assert "lead" in error_fields(response)


def test_list_is_cursor_paginated_newest_first(client, tenant):
    contacts = ContactFactory.create_batch(5, tenant=tenant)
    first = client.get("/api/v1/contacts?page_size=2").json()
    assert [r["id"] for r in first["results"]] == [contacts[4].pk, contacts[3].pk]
    second = client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [contacts[2].pk, contacts[1].pk]


def _make_contacts(tenant, n):
    for i in range(n):
        contact = ContactFactory(tenant=tenant, phone=f"+1415555{i:04d}")
        if i % 2:
            ContactUnsubscribeFactory(tenant=tenant, channel_value=contact.email)


@pytest.mark.parametrize("n", [3, 12])
def test_list_query_count_does_not_grow_with_rows(client, tenant, n, django_assert_num_queries):
    _make_contacts(tenant, n)
    # API key, contacts page, then per channel (email, sms): opt-outs and suppressions.
    with django_assert_num_queries(6):
        response = client.get("/api/v1/contacts")
    assert response.status_code == 200
    assert len(response.json()["results"]) == n


def test_delete_is_refused_while_the_contact_is_in_a_running_campaign(client, tenant):
    enrolment = ContactCampaignFactory(tenant=tenant, status="active", current_node_id="email_intro")
    response = client.delete(f"/api/v1/contacts/{enrolment.contact_id}")
    assert response.status_code == 409
    assert Contact.objects.filter(pk=enrolment.contact_id).exists()


def test_delete_of_a_finished_contact_keeps_its_opt_out(client, tenant):
    contact = ContactFactory(tenant=tenant, email="gone@acme.example")
    ContactCampaignFactory(tenant=tenant, contact=contact, status="completed")
    ContactUnsubscribeFactory(tenant=tenant, channel_value="gone@acme.example", contact=contact)
    assert client.delete(f"/api/v1/contacts/{contact.pk}").status_code == 204
    again = client.post("/api/v1/contacts", {"email": "gone@acme.example"}, format="json").json()
    assert again["is_unsubscribed"] is True


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posixrules"])
def test_a_zone_that_is_no_place_is_refused_naming_the_timezone_field(client, zone):
    """The plan language refuses these names (outreach.timezones): a contact must never carry one, or its
    plan would silently run on UTC."""
    response = client.post("/api/v1/contacts", {"email": "a@b.example", "timezone": zone}, format="json")
    assert response.status_code == 400
    assert "timezone" in error_fields(response), response.json()
    assert Contact.objects.count() == 0
