"""GET /api/v1/messages and the change feeds (created_since / updated_since) of leads, contacts, enrolments:
filters, events per message, fixed query counts, and keyset cursors that survive inserts."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns.tests.factories import ContactCampaignFactory
from contacts.tests.factories import ContactFactory, LeadFactory
from messaging.tests.factories import MessageEventFactory, OutboundMessageFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields

ENDPOINTS = [
    Endpoint("GET", "messages", Role.VIEWER, detail=False),
    Endpoint("GET", "messages/{message}", Role.VIEWER),
]


@pytest.fixture
def ids(tenant):
    return {"message": OutboundMessageFactory(tenant=tenant).pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.VIEWER)


def _message(tenant, **kwargs):
    enrolment = kwargs.pop("contact_campaign", None) or ContactCampaignFactory(tenant=tenant)
    return OutboundMessageFactory(tenant=tenant, contact_campaign=enrolment, contact=enrolment.contact, **kwargs)


@pytest.mark.django_db
def test_a_message_lists_with_its_campaign_status_and_events_in_occurrence_order(client, tenant):
    message = _message(tenant, status="sent", sent_at=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC))
    later = MessageEventFactory(tenant=tenant, outbound_message=message, event_type="open",
                                occurred_at=dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC))
    earlier = MessageEventFactory(tenant=tenant, outbound_message=message, event_type="delivered",
                                  occurred_at=dt.datetime(2026, 3, 1, 9, 1, tzinfo=dt.UTC))
    [row] = client.get("/api/v1/messages").json()["results"]
    assert row["campaign"] == message.contact_campaign.campaign_id and row["status"] == "sent"
    assert [e["id"] for e in row["events"]] == [earlier.pk, later.pk]
    assert "received_at" in row["events"][0]


@pytest.mark.django_db
def test_filters_by_contact_campaign_and_status(client, tenant):
    a = _message(tenant, status="sent", sent_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    b = _message(tenant, status="queued")
    def ids_for(**params):
        return {r["id"] for r in client.get("/api/v1/messages", params).json()["results"]}
    assert ids_for(contact=a.contact_id) == {a.pk}
    assert ids_for(campaign=b.contact_campaign.campaign_id) == {b.pk}
    assert ids_for(status="queued") == {b.pk}


@pytest.mark.django_db
def test_a_bad_filter_is_a_400_naming_it(client):
    response = client.get("/api/v1/messages", {"status": "delivered-ish"})
    assert response.status_code == 400 and error_fields(response) == {"status"}


@pytest.mark.django_db
def test_other_tenants_messages_never_show(client, other_tenant):
    _message(other_tenant)
    assert client.get("/api/v1/messages").json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("n", [2, 8])
def test_the_message_list_runs_a_fixed_number_of_queries(client, tenant, n, django_assert_num_queries):
    for _ in range(n):
        message = _message(tenant)
        MessageEventFactory.create_batch(2, tenant=tenant, outbound_message=message)
    with django_assert_num_queries(3):  # API key, messages page, their events
        response = client.get("/api/v1/messages")
    assert len(response.json()["results"]) == n


@pytest.mark.django_db
@pytest.mark.parametrize("n", [2, 8])
def test_a_change_feed_page_runs_a_fixed_number_of_queries(client, tenant, n, django_assert_num_queries):
    LeadFactory.create_batch(n, tenant=tenant)
    with django_assert_num_queries(2):  # API key, leads page
        response = client.get("/api/v1/leads", {"updated_since": "2000-01-01T00:00:00Z"})
    assert len(response.json()["results"]) == n


def _page_through(client, path, params):
    seen, url, pages = [], path, 0
    body = client.get(url, params).json()
    while True:
        pages += 1
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            return seen, pages
        body = client.get(body["next"]).json()


@pytest.mark.django_db
@pytest.mark.parametrize("path, factory", [
    ("/api/v1/leads", lambda t: LeadFactory(tenant=t)),
    ("/api/v1/contacts", lambda t: ContactFactory(tenant=t)),
    ("/api/v1/contact-campaigns", lambda t: ContactCampaignFactory(tenant=t)),
    ("/api/v1/messages", lambda t: _message(t)),
])
@pytest.mark.parametrize("param", ["created_since", "updated_since"])
def test_a_change_feed_pages_oldest_first_and_rows_inserted_meanwhile_come_last(client, tenant, path, factory,
                                                                               param):
    first = [factory(tenant).pk for _ in range(5)]
    params = {param: "2000-01-01T00:00:00Z", "page_size": 2}
    body = client.get(path, params).json()
    assert [r["id"] for r in body["results"]] == first[:2]
    inserted = factory(tenant).pk  # arrives while the client pages
    seen = [r["id"] for r in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [r["id"] for r in body["results"]]
    assert seen == [*first, inserted]


@pytest.mark.django_db
def test_updated_since_shows_a_row_changed_after_the_mark_only(client, tenant):
    from outreach import clock

    old, changed = LeadFactory(tenant=tenant), LeadFactory(tenant=tenant)
    mark = clock.now()
    changed.notes = "edited"
    changed.save()
    body = client.get("/api/v1/leads", {"updated_since": mark.isoformat()}).json()
    assert [r["id"] for r in body["results"]] == [changed.pk] and old.pk != changed.pk


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage!!", "eyJ0IjogIm5vIn0="])
def test_a_forged_feed_cursor_is_a_400_naming_cursor(client, cursor):
    response = client.get("/api/v1/leads", {"updated_since": "2000-01-01T00:00:00Z", "cursor": cursor})
    assert response.status_code == 400 and error_fields(response) == {"cursor"}
