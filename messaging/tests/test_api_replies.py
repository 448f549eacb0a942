"""Issue 11 item 7: the replies inbox over the API (filters, stable cursor order, access matrix, query count)
and the admin inbox's switches (release, discard, correct: re-fed to the engine, audited)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from campaigns.models import CampaignTransition
from contacts.tests.factories import ContactFactory
from messaging.models import ContactUnsubscribe, InboundMessage
from messaging.tests.factories import InboundMessageFactory, OutboundMessageFactory
from messaging.tests.test_inbound import post_and_process, sent_message
from messaging.tests.test_reply_reading import headers_for, parsed_mode
from outreach import clock
from outreach.tenancy.models import AuditEntry, Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    Endpoint("GET", "replies", Role.VIEWER, detail=False),
    Endpoint("GET", "replies/{reply}", Role.VIEWER),
    Endpoint("POST", "replies/{reply}/reclassify", Role.ADMIN,
             body={"label": "neutral", "reason": "misread"}, ok=(200,)),
    Endpoint("POST", "replies/{held}/release", Role.ADMIN, body={"reason": "checked by phone"}, ok=(200,)),
    Endpoint("POST", "replies/{held}/discard", Role.ADMIN, body={"reason": "forged"}, ok=(200,)),
]


@pytest.fixture
def ids(tenant):
    return {"reply": InboundMessageFactory(tenant=tenant, classification="positive").pk,
            "held": InboundMessageFactory(tenant=tenant, classification="positive", review_status="held",
                                          verdict="unauthenticated").pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=13) as handle:
        yield handle


def listed(tenant, query: str = "") -> list[int]:
    response = api_client(tenant=tenant, role=Role.VIEWER).get(f"/api/v1/replies{query}")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_the_list_filters_by_class_review_contact_campaign_and_date(tenant, other_tenant):
    outbound = OutboundMessageFactory(tenant=tenant, contact=ContactFactory(tenant=tenant))
    positive = InboundMessageFactory(tenant=tenant, classification="positive", classification_confidence=0.9,
                                     outbound_message=outbound)
    held = InboundMessageFactory(tenant=tenant, classification="positive", classification_confidence=0.9,
                                 review_status="held", verdict="unauthenticated")
    unreadable = InboundMessageFactory(tenant=tenant, classification="neutral", classification_confidence=0.4)
    bounce = InboundMessageFactory(tenant=tenant, kind="bounce", bounce_type="hard")
    InboundMessageFactory(tenant=other_tenant, classification="positive")

    assert set(listed(tenant)) == {positive.id, held.id, unreadable.id, bounce.id}
    assert set(listed(tenant, "?class=positive")) == {positive.id, held.id}
    assert listed(tenant, "?class=bounce") == [bounce.id]
    assert set(listed(tenant, "?needs_review=true")) == {held.id, unreadable.id}
    assert listed(tenant, "?held=true") == [held.id]
    assert listed(tenant, f"?contact={outbound.contact_id}") == [positive.id]
    future = (clock.now() + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert listed(tenant, f"?received_since={future}") == []


@pytest.mark.parametrize("query, field", [("?class=maybe", "class"), ("?received_since=yesterday", "received_since"),
                                          ("?contact=x", "contact"), ("?cursor=bogus", "cursor")])
def test_bad_filters_are_a_400_naming_the_parameter(tenant, query, field):
    response = api_client(tenant=tenant, role=Role.VIEWER).get(f"/api/v1/replies{query}")
    assert response.status_code == 400 and field in error_fields(response)


def test_the_order_is_stable_newest_first_across_cursor_pages(tenant):
    rows = [InboundMessageFactory(tenant=tenant) for _ in range(5)]
    InboundMessage.objects.filter(id__in=[r.id for r in rows]).update(received_at=clock.now())  # all tied
    client = api_client(tenant=tenant, role=Role.VIEWER)
    seen, url = [], "/api/v1/replies?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == sorted((r.id for r in rows), reverse=True)


@pytest.mark.parametrize("n", [2, 7])
def test_list_query_count_does_not_grow_with_rows(tenant, n, django_assert_num_queries):
    for _ in range(n):
        InboundMessageFactory(tenant=tenant, outbound_message=OutboundMessageFactory(tenant=tenant))
    client = api_client(tenant=tenant, role=Role.VIEWER)
    with django_assert_num_queries(2):  # API key, page (outbound and contact campaign joined)
        response = client.get("/api/v1/replies")
    assert len(response.json()["results"]) == n


# --- operator actions: release, discard, correct ------------------------------------------------------


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    return client


def switch(operator, row: InboundMessage, name: str, reason: str = "checked by phone"):
    return operator.post(f"/admin/messaging/inboundmessage/{row.pk}/switch/{name}/", {"reason": reason})


def test_the_admin_inbox_lists_and_filters_replies(operator, tenant):
    InboundMessageFactory(tenant=tenant, classification="positive", new_text="Let's talk", language="en")
    InboundMessageFactory(tenant=tenant, review_status="held", verdict="spam", new_text="Buy now")
    page = operator.get("/admin/messaging/inboundmessage/?needs_review=yes")
    assert page.status_code == 200
    assert b"Buy now" in page.content and b"Let&#x27;s talk" not in page.content


def test_releasing_a_held_reply_moves_the_plan_and_is_audited(operator, sim, inbound_url):
    message = sent_message()
    post_and_process(operator, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great, let's book a call.",
        spf="fail", dkim="{@acme.example : fail}"))
    held = InboundMessage.objects.get()
    assert held.review_status == "held"

    response = switch(operator, held, "release")

    assert response.status_code == 302
    held.refresh_from_db()
    assert held.review_status == "released"
    assert CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                             event="reply_positive").exists()
    assert AuditEntry.objects.filter(action="reply.release", target_id=str(held.pk)).exists()


def test_discarding_a_held_reply_moves_nothing(operator, sim, inbound_url):
    message = sent_message()
    post_and_process(operator, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great.", spam_score="9"))
    held = InboundMessage.objects.get()
    switch(operator, held, "discard")
    held.refresh_from_db()
    assert held.review_status == "discarded"
    assert not CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                                 event__startswith="reply").exists()
    assert switch(operator, held, "release").status_code in (200, 302)  # refused: not held any more
    held.refresh_from_db()
    assert held.review_status == "discarded"


def test_correcting_a_missed_stop_request_refeeds_the_engine_and_opts_out(operator, sim, inbound_url):
    message = sent_message()
    post_and_process(operator, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Thanks, but I'd rather you didn't."))
    reply = InboundMessage.objects.get()
    assert not reply.stop_request

    switch(operator, reply, "correct_to_stop")

    reply.refresh_from_db()
    assert (reply.classification, reply.stop_request, reply.review_status) == ("negative", True, "corrected")
    assert ContactUnsubscribe.objects.filter(channel_value=message.to_address).exists()
    assert AuditEntry.objects.filter(action="reply.reclassify", target_id=str(reply.pk)).exists()


def test_the_api_correction_refuses_a_bounce_naming_the_field(tenant):
    bounce = InboundMessageFactory(tenant=tenant, kind="bounce")
    response = api_client(tenant=tenant, role=Role.ADMIN).post(
        f"/api/v1/replies/{bounce.pk}/reclassify", {"label": "positive", "reason": "x"}, format="json")
    assert response.status_code == 400 and "kind" in response.content.decode()


def test_the_api_releases_a_held_reply_into_the_plan_and_audits_it(sim, inbound_url, client):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great, let's book a call.",
        spf="fail", dkim="{@acme.example : fail}"))
    held = InboundMessage.objects.get()

    response = api_client(tenant=held.tenant, role=Role.ADMIN).post(
        f"/api/v1/replies/{held.pk}/release", {"reason": "checked by phone"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["review_status"] == "released"
    assert CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                             event="reply_positive").exists()
    entry = AuditEntry.objects.get(action="reply.release", target_id=str(held.pk))
    assert entry.detail["reason"] == "checked by phone"


def test_the_api_discards_a_held_reply_and_it_moves_nothing(sim, inbound_url, client):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great.", spam_score="9"))
    held = InboundMessage.objects.get()
    admin = api_client(tenant=held.tenant, role=Role.ADMIN)

    response = admin.post(f"/api/v1/replies/{held.pk}/discard", {}, format="json")

    assert response.status_code == 200 and response.json()["review_status"] == "discarded"
    assert AuditEntry.objects.filter(action="reply.discard", target_id=str(held.pk)).exists()
    again = admin.post(f"/api/v1/replies/{held.pk}/release", {"reason": "changed my mind"}, format="json")
    assert again.status_code == 400 and "review_status" in error_fields(again)
    assert not CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                                 event__startswith="reply").exists()


@pytest.mark.parametrize("action, body, field", [
    ("release", {}, "reason"),
    ("release", {"reason": "x" * 2001}, "reason"),
    ("discard", {"reason": ["not", "text"]}, "reason"),
])
def test_bad_release_or_discard_input_is_a_400_naming_the_field_and_changes_nothing(tenant, action, body, field):
    held = InboundMessageFactory(tenant=tenant, review_status="held", verdict="spam")
    response = api_client(tenant=tenant, role=Role.ADMIN).post(f"/api/v1/replies/{held.pk}/{action}", body,
                                                                format="json")
    assert response.status_code == 400 and field in error_fields(response)
    held.refresh_from_db()
    assert held.review_status == "held"
    assert not AuditEntry.objects.filter(target_id=str(held.pk)).exists()


def test_releasing_a_reply_that_is_not_held_is_a_400_naming_review_status(tenant):
    trusted = InboundMessageFactory(tenant=tenant, classification="positive")
    response = api_client(tenant=tenant, role=Role.ADMIN).post(
        f"/api/v1/replies/{trusted.pk}/release", {"reason": "x"}, format="json")
    assert response.status_code == 400 and "review_status" in error_fields(response)
