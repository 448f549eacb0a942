"""The operator console on the big tables: an address is searched through the outbox (no scan of events),
webhook deliveries are listed without their raw bodies, and counts stay estimates."""
from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging.models import MessageEvent, WebhookDelivery
from messaging.tests.factories import MessageEventFactory, OutboundMessageFactory, WebhookDeliveryFactory
from outreach.testing import queryset_indexes_used

pytestmark = pytest.mark.django_db

EVENTS = "admin:messaging_messageevent_changelist"
DELIVERIES = "admin:messaging_webhookdelivery_changelist"


def _search(term: str):
    model_admin = site._registry[MessageEvent]
    request = RequestFactory().get("/", {"q": term})
    queryset, _ = model_admin.get_search_results(request, MessageEvent.objects.all(), term)
    return queryset


def test_searching_events_by_address_finds_the_events_of_the_messages_sent_to_it(admin_client):
    message = OutboundMessageFactory(to_address="dana@acme.example")
    mine = MessageEventFactory(tenant=message.tenant, outbound_message=message, email="dana@acme.example")
    MessageEventFactory(tenant=message.tenant, outbound_message=OutboundMessageFactory(), email="x@acme.example")

    response = admin_client.get(reverse(EVENTS), {"q": " Dana@Acme.example "})

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]


def test_searching_events_by_address_reads_the_outbox_address_index_and_the_events_message_index():
    used = queryset_indexes_used(_search("dana@acme.example"))
    assert {"om_to_created", "me_message_event"} <= used


def test_the_webhook_deliveries_changelist_reads_no_raw_body(admin_client):
    WebhookDeliveryFactory.create_batch(3, body=b"[" + b"x" * 50_000 + b"]")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(DELIVERIES))

    assert response.status_code == 200 and len(response.context["cl"].result_list) == 3
    listing = [q["sql"] for q in queries if 'FROM "webhook_deliveries"' in q["sql"] and "COUNT" not in q["sql"]]
    assert listing and all('"webhook_deliveries"."body"' not in sql for sql in listing)


def test_a_webhook_delivery_page_still_shows_its_body(admin_client):
    delivery = WebhookDeliveryFactory(body=b'[{"event": "delivered"}]')
    page = admin_client.get(reverse("admin:messaging_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and "&quot;delivered&quot;" in page.content.decode()


def test_the_deliveries_changelist_queries_stay_pinned(admin_client, django_assert_num_queries):
    WebhookDeliveryFactory.create_batch(5)
    admin_client.get(reverse(DELIVERIES))  # session and permission caches warm
    # session, user, the table estimate, the exact count below the estimate threshold, the page, and the
    # global sending switch every admin page shows.
    with django_assert_num_queries(6):
        admin_client.get(reverse(DELIVERIES))
    assert WebhookDelivery.objects.count() == 5
