"""CSV import: upload checks, the asynchronous job, per-row errors, and never a half-imported row."""
from __future__ import annotations

import base64
import json

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from contacts.imports import import_job_run
from contacts.models import Contact, ContactChannel, ImportJob, Lead
from contacts.tasks import import_contacts_csv
from contacts.tests.factories import ContactFactory, ImportJobFactory, LeadFactory
from messaging.tests.factories import ContactUnsubscribeFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client, error_fields

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = """Company,Domain,First Name,Last Name,Title,Email,Phone,Timezone,Language
Acme,acme.example,Dana,Smith,COO,Dana@Acme.example,+1 415 555 0100,America/Los_Angeles,en
Acme,acme.example,Sam,Jones,CTO,sam@acme.example,,,
Ghost Corp,ghost.example,Bad,Email,,not-an-email,,,
Globex,globex.example,Tim,Zone,,tim@globex.example,,Mars/Olympus,
Acme,acme.example,Dana,Again,,dana@acme.example,,,
Initech,,Opted,Out,,gone@initech.example,,,
,,Phone,Only,,,+14155550199,,
"""


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.MEMBER)


def _upload(client, content: str | bytes, name: str = "contacts.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/api/v1/imports", {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
                       format="multipart")


def test_upload_queues_the_import_task_after_commit(client, django_capture_on_commit_callbacks):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("lead_analysis")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = _upload(client, GOOD_AND_BAD)
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "queued" and body["total_rows"] == 7
        [raw] = broker.lrange("lead_analysis", 0, -1)
        message = json.loads(raw)
        assert message["headers"]["task"] == "lead_analysis.import_contacts_csv"
        assert json.loads(base64.b64decode(message["body"]))[0] == [body["id"]]
    finally:
        broker.delete("lead_analysis")


def test_the_job_imports_good_rows_and_reports_each_bad_one(client, tenant):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="gone@initech.example")
    job_id = _upload(client, GOOD_AND_BAD).json()["id"]

    import_contacts_csv(job_id)

    body = client.get(f"/api/v1/imports/{job_id}").json()
    assert body["status"] == "done"
    assert (body["total_rows"], body["processed_rows"], body["imported_rows"], body["error_rows"]) == (7, 7, 4, 3)
    assert body["unsubscribed_rows"] == 1
    assert body["leads_created"] == 2  # Acme and Initech; Ghost Corp and Globex rows failed
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(4, "email"), (5, "timezone"), (6, "email")]
    assert "row 2" in body["errors"][2]["message"]

    dana = Contact.objects.get(tenant=tenant, email="dana@acme.example")
    assert (dana.first_name, dana.phone, dana.timezone, dana.lead.name) == ("Dana", "+14155550100",
                                                                           "America/Los_Angeles", "Acme")
    assert Contact.objects.get(email="sam@acme.example").lead_id == dana.lead_id
    assert Contact.objects.get(phone="+14155550199").lead is None
    assert set(ContactChannel.objects.filter(contact=dana).values_list("channel", "value")) == {
        ("email", "dana@acme.example"), ("sms", "+14155550100")}
    opted_out = Contact.objects.get(email="gone@initech.example")
    assert client.get(f"/api/v1/contacts/{opted_out.pk}").json()["is_unsubscribed"] is True


def test_a_row_with_an_error_leaves_nothing_behind(client, tenant):
    job_id = _upload(client, GOOD_AND_BAD).json()["id"]
    import_job_run(import_job_id=job_id)
    assert not Lead.objects.filter(tenant=tenant, name__in=["Ghost Corp", "Globex"]).exists()
    assert not Contact.objects.filter(tenant=tenant, email__in=["tim@globex.example"]).exists()
    assert Contact.objects.filter(tenant=tenant).count() == 4


def test_existing_leads_are_reused_and_existing_contacts_reported(client, tenant):
    lead = LeadFactory(tenant=tenant, name="Acme Inc", domain="acme.example")
    by_name = LeadFactory(tenant=tenant, name="Initech", domain="")
    ContactFactory(tenant=tenant, email="sam@acme.example")
    job_id = _upload(client, "company,domain,email\nAcme,acme.example,new@acme.example\n"
                             "Acme,acme.example,sam@acme.example\nINITECH,,bob@initech.example\n").json()["id"]
    job = import_job_run(import_job_id=job_id)
    assert (job.imported_rows, job.error_rows, job.leads_created) == (2, 1, 0)
    assert job.errors == [{"row": 3, "field": "email", "message": "A contact with this email address already exists."}]
    assert Contact.objects.get(email="new@acme.example").lead_id == lead.pk
    assert Contact.objects.get(email="bob@initech.example").lead_id == by_name.pk


def test_a_row_the_database_refuses_fails_alone_and_whole(client, tenant):
    # A constraint the row checks cannot know about makes the bulk insert fail; the job then retries
    # row by row, and the refused row must leave neither its contact nor the lead created for it.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE contacts ADD CONSTRAINT test_refuse_boom CHECK (email <> 'boom@boom.example')")
    job_id = _upload(client, "company,email\nAcme,a@acme.example\nBoom Ltd,boom@boom.example\n"
                             "Acme,b@acme.example\n").json()["id"]
    job = import_job_run(import_job_id=job_id)
    assert (job.imported_rows, job.error_rows, job.leads_created) == (2, 1, 1)
    assert job.errors[0]["row"] == 3 and "Could not be stored" in job.errors[0]["message"]
    assert set(Lead.objects.filter(tenant=tenant).values_list("name", flat=True)) == {"Acme"}
    assert set(Contact.objects.filter(tenant=tenant).values_list("email", flat=True)) == {"a@acme.example",
                                                                                         "b@acme.example"}


def test_batches_commit_progress_and_a_rerun_of_a_finished_job_does_nothing(client, tenant):
    rows = "".join(f"Acme,p{i}@acme.example\n" for i in range(7))
    job_id = _upload(client, "company,email\n" + rows).json()["id"]
    job = import_job_run(import_job_id=job_id, batch_size=3)
    assert (job.status, job.processed_rows, job.imported_rows) == ("done", 7, 7)
    again = import_job_run(import_job_id=job_id, batch_size=3)
    assert (again.imported_rows, again.error_rows) == (7, 0)
    assert Contact.objects.filter(tenant=tenant).count() == 7


def test_a_redelivered_job_resumes_after_its_last_committed_batch(tenant):
    content = "email\n" + "".join(f"p{i}@acme.example\n" for i in range(5))
    # As left by a worker that died after committing the first batch of two rows.
    job = ImportJobFactory(tenant=tenant, content=content, total_rows=5, status="running", processed_rows=2,
                           imported_rows=2)
    ContactFactory(tenant=tenant, email="p0@acme.example")
    ContactFactory(tenant=tenant, email="p1@acme.example")
    job = import_job_run(import_job_id=job.pk, batch_size=2)
    assert (job.status, job.imported_rows, job.error_rows) == ("done", 5, 0)
    assert Contact.objects.filter(tenant=tenant).count() == 5


@pytest.mark.parametrize("content", [
    b"",
    b"first_name,last_name\nDana,Smith\n",
    b"email\n",
    "email\nd\xe4na@acme.example\n".encode("latin-1"),
    b"email\n\"unterminated@acme.example\n",
])
def test_an_unusable_file_is_a_400_naming_file(client, content):
    response = _upload(client, content)
    assert response.status_code == 400, response.content
    assert "file" in error_fields(response)
    assert ImportJob.objects.count() == 0


def test_a_missing_file_is_a_400_naming_file(client):
    response = client.post("/api/v1/imports", {}, format="multipart")
    assert response.status_code == 400
    assert "file" in error_fields(response)


@pytest.mark.parametrize("n", [2, 8])
def test_list_query_count_does_not_grow_with_rows(client, tenant, n, django_assert_num_queries):
    ImportJobFactory.create_batch(n, tenant=tenant)
    with django_assert_num_queries(2):  # API key, imports page
        response = client.get("/api/v1/imports")
    assert len(response.json()["results"]) == n
    assert "errors" not in response.json()["results"][0]


def test_a_row_with_a_zone_that_is_no_place_is_reported_on_the_timezone_field(client, tenant):
    """Factory, localtime and posixrules are on the tz path but are no place: refused as in the API."""
    content = ("Email,Timezone\nfactory@acme.example,Factory\nlocal@acme.example,localtime\n"
               "rules@acme.example,posixrules\n")
    job_id = _upload(client, content).json()["id"]

    import_contacts_csv(job_id)

    body = client.get(f"/api/v1/imports/{job_id}").json()
    assert (body["status"], body["imported_rows"], body["error_rows"]) == ("done", 0, 3)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "timezone"), (3, "timezone"), (4, "timezone")]
    assert not Contact.objects.filter(tenant=tenant).exists()
