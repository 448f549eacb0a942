"""Read-only work goes to the `replica` alias when a replica is configured (outreach/db_router.py): admin
changelists of big tables and campaign metrics read there, writes and everything else stay on default,
and a replica lagging past REPLICA_MAX_LAG_SECONDS is skipped. In tests `replica` is the test database
itself (a mirror), so the rows must be committed for the second connection to see them."""
from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.api.selectors import campaign_metrics
from campaigns.tests.factories import ContactCampaignFactory
from messaging.models import MessageEvent
from messaging.tests.factories import MessageEventFactory
from outreach import db_router
from outreach.db_router import replica_reads

BOTH = ["default", "replica"]


@pytest.fixture
def replica_on(settings):
    settings.READ_REPLICA_ENABLED = True
    settings.REPLICA_MAX_LAG_SECONDS = 30.0


@pytest.mark.django_db(databases=BOTH)
def test_without_a_configured_replica_everything_reads_the_primary(settings):
    assert settings.READ_REPLICA_ENABLED is False
    with replica_reads() as alias:
        assert alias == "default" and MessageEvent.objects.all().db == "default"


@pytest.mark.django_db(databases=BOTH)
def test_reads_inside_the_block_go_to_the_replica_and_writes_never_do(replica_on):
    with replica_reads() as alias:
        assert alias == "replica"
        assert MessageEvent.objects.all().db == "replica"
        event = MessageEventFactory()
        assert event._state.db == "default"
    assert MessageEvent.objects.all().db == "default"


@pytest.mark.django_db(databases=BOTH)
def test_a_replica_lagging_past_the_limit_is_skipped(replica_on, monkeypatch):
    monkeypatch.setattr(db_router, "replica_lag_seconds", lambda: 120.0)
    with replica_reads() as alias:
        assert alias == "default" and MessageEvent.objects.all().db == "default"


@pytest.mark.django_db(databases=BOTH, transaction=True)
def test_the_event_changelist_is_read_from_the_replica(replica_on, admin_client):
    event = MessageEventFactory(email="dana@acme.example")

    with CaptureQueriesContext(connections["replica"]) as on_replica:
        page = admin_client.get(reverse("admin:messaging_messageevent_changelist"))

    assert page.status_code == 200
    assert [row.pk for row in page.context["cl"].result_list] == [event.pk]
    assert any('FROM "message_events"' in q["sql"] for q in on_replica.captured_queries)


@pytest.mark.django_db(databases=BOTH, transaction=True)
def test_campaign_metrics_are_read_from_the_replica(replica_on):
    enrolment = ContactCampaignFactory()

    with CaptureQueriesContext(connections["replica"]) as on_replica:
        metrics = campaign_metrics(campaign=enrolment.campaign)

    assert metrics["contact_campaigns"]["pending"] == 1
    assert len(on_replica.captured_queries) >= 2
