"""Leads over the API: domain cleaning, analysis queued after commit, filters, deletion rules."""
from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings

from campaigns.tests.factories import ContactCampaignFactory
from contacts.models import Contact, Lead
from contacts.tests.factories import ContactFactory, LeadFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client, error_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.MEMBER)


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    connection.delete("lead_analysis")
    yield connection
    connection.delete("lead_analysis")


def _queued_tasks(broker) -> list[tuple[str, list]]:
    messages = [json.loads(raw) for raw in broker.lrange("lead_analysis", 0, -1)]
    return [(m["headers"]["task"], json.loads(__import__("base64").b64decode(m["body"]))[0]) for m in messages]


def test_create_reduces_a_url_to_its_domain_and_queues_analysis_after_commit(
        client, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/leads", {"name": "Acme", "domain": "https://www.Acme.example/about"},
                               format="json")
        assert broker.llen("lead_analysis") == 0  # nothing leaves before the commit
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["domain"] == "acme.example"
    assert body["analysis_status"] == "pending"
    assert _queued_tasks(broker) == [("lead_analysis.analyse_leads", [[body["id"]]])]


def test_a_lead_without_name_takes_its_domain(client):
    body = client.post("/api/v1/leads", {"domain": "globex.example"}, format="json").json()
    assert body["name"] == "globex.example"


@pytest.mark.parametrize("payload, field", [
    ({}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "Acme", "domain": "not a domain"}, "domain"),
    ({"name": "x" * 201}, "name"),
])
def test_invalid_input_is_a_400_naming_the_field(client, payload, field):
    response = client.post("/api/v1/leads", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response), response.json()
    assert Lead.objects.count() == 0


def test_analysis_is_read_only(client, tenant):
    lead = LeadFactory(tenant=tenant)
    response = client.patch(f"/api/v1/leads/{lead.pk}", {"analysis": {"fit": "great"},
                                                          "analysis_status": "done"}, format="json")
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.analysis is None and lead.analysis_status == "pending"


def test_filters_by_domain_and_text(client, tenant):
    acme = LeadFactory(tenant=tenant, name="Acme Corp", domain="acme.example")
    LeadFactory(tenant=tenant, name="Globex", domain="globex.example")
    assert [r["id"] for r in client.get("/api/v1/leads?domain=ACME.example").json()["results"]] == [acme.pk]
    assert [r["id"] for r in client.get("/api/v1/leads?q=corp").json()["results"]] == [acme.pk]
    assert client.get("/api/v1/leads?analysis_status=bogus").status_code == 400


@pytest.mark.parametrize("n", [3, 12])
def test_list_query_count_does_not_grow_with_rows(client, tenant, n, django_assert_num_queries):
    LeadFactory.create_batch(n, tenant=tenant)
    with django_assert_num_queries(2):  # API key, leads page
        response = client.get("/api/v1/leads")
    assert len(response.json()["results"]) == n


def test_delete_removes_its_contacts(client, tenant):
    contact = ContactFactory(tenant=tenant)
    assert client.delete(f"/api/v1/leads/{contact.lead_id}").status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_delete_is_refused_while_a_contact_is_in_a_running_campaign(client, tenant):
    enrolment = ContactCampaignFactory(tenant=tenant, status="paused", current_node_id="email_intro")
    response = client.delete(f"/api/v1/leads/{enrolment.contact.lead_id}")
    assert response.status_code == 409
    assert Lead.objects.filter(pk=enrolment.contact.lead_id).exists()


# --- one lead per domain (the CSV import matches leads by domain) -----------------------------------

def test_a_second_lead_with_the_same_domain_is_a_409_naming_the_existing_lead(client, tenant):
    existing = LeadFactory(tenant=tenant, domain="acme.example")
    response = client.post("/api/v1/leads", {"name": "Acme again", "domain": "https://www.acme.example/x"},
                           format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "duplicate_domain" and body["meta"] == {"existing_lead_id": existing.pk}
    assert f"Lead {existing.pk}" in body["message"] and error_fields(response) == {"domain"}
    assert Lead.objects.filter(tenant=tenant).count() == 1


def test_renaming_a_lead_to_a_taken_domain_is_a_409(client, tenant):
    LeadFactory(tenant=tenant, domain="acme.example")
    other = LeadFactory(tenant=tenant, domain="globex.example")
    response = client.patch(f"/api/v1/leads/{other.pk}", {"domain": "acme.example"}, format="json")
    assert response.status_code == 409
    assert client.patch(f"/api/v1/leads/{other.pk}", {"domain": "globex.example"}, format="json").status_code == 200


def test_leads_without_a_domain_and_other_tenants_are_free(client, tenant, other_tenant):
    LeadFactory(tenant=other_tenant, domain="acme.example")
    assert client.post("/api/v1/leads", {"name": "Acme", "domain": "acme.example"}, format="json").status_code == 201
    for _ in range(2):
        assert client.post("/api/v1/leads", {"name": "No domain"}, format="json").status_code == 201


def test_the_database_refuses_a_duplicate_domain_too(tenant):
    from django.db import IntegrityError, transaction

    LeadFactory(tenant=tenant, domain="acme.example")
    with pytest.raises(IntegrityError), transaction.atomic():
        Lead.objects.create(tenant=tenant, name="Twin", domain="acme.example")


def test_the_csv_import_still_files_contacts_under_the_lead_of_their_domain(tenant):
    from contacts.imports import import_job_create, import_job_run

    lead = LeadFactory(tenant=tenant, domain="acme.example", name="Acme Inc")
    job = import_job_create(tenant=tenant, content=b"company,domain,email\nACME,acme.example,a@acme.example\n"
                                                   b"Acme GmbH,www.acme.example,b@acme.example\n")
    import_job_run(import_job_id=job.pk)
    assert set(Contact.objects.filter(tenant=tenant).values_list("lead_id", flat=True)) == {lead.pk}
    assert Lead.objects.filter(tenant=tenant).count() == 1
