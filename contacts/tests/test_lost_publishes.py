"""Nothing accepted is lost when the broker is away at commit: the request still succeeds (its rows are
stored) and the stale-work sweeps publish the jobs again once the broker is back."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kombu.exceptions import OperationalError

from campaigns.generation import contact_campaigns_requeue_stale_generation
from campaigns.models import ContactCampaign
from campaigns.tests.factories import CampaignFactory, purge_queues, queued_tasks, started_contact_campaign
from contacts.imports import import_jobs_requeue_stale
from contacts.models import ImportJob
from contacts.tests.factories import ContactFactory
from outreach.celery import app
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client

pytestmark = pytest.mark.django_db

CSV = "Company,Email,First Name\nAcme,dana@acme.example,Dana\n"


def _broker_down(*args, **kwargs):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture(autouse=True)
def clean_queues():
    purge_queues("lead_analysis", "campaign_creation")
    yield
    purge_queues("lead_analysis", "campaign_creation")


def test_an_import_accepted_while_the_broker_is_down_is_202_and_the_sweep_publishes_it(
        tenant, monkeypatch, django_capture_on_commit_callbacks):
    client = api_client(tenant=tenant, role=Role.MEMBER)
    monkeypatch.setattr(app, "send_task", _broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/imports", {"file": SimpleUploadedFile("c.csv", CSV.encode(), "text/csv")},
                               format="multipart")
    assert response.status_code == 202, response.content
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.status == ImportJob.Status.QUEUED and queued_tasks("lead_analysis") == []

    monkeypatch.undo()  # the broker is back
    assert import_jobs_requeue_stale(older_than=dt.timedelta(hours=1)) == 0  # too young to be called lost
    assert import_jobs_requeue_stale(older_than=dt.timedelta(0)) == 1
    assert queued_tasks("lead_analysis") == [("lead_analysis.import_contacts_csv", [job.pk])]


def test_an_enrolment_whose_plan_job_was_lost_is_published_again_but_one_with_a_plan_is_not(
        tenant, monkeypatch, django_capture_on_commit_callbacks):
    client = api_client(tenant=tenant, role=Role.MEMBER)
    campaign = CampaignFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)
    monkeypatch.setattr(app, "send_task", _broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/contacts/{contact.pk}/campaigns", {"campaign": campaign.pk}, format="json")
    assert response.status_code == 201, response.content
    monkeypatch.undo()
    assert queued_tasks("campaign_creation") == []
    started_contact_campaign(tenant=tenant)  # has its plan: never published again
    purge_queues("campaign_execution")

    assert contact_campaigns_requeue_stale_generation(older_than=dt.timedelta(0)) == 1
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans", [[response.json()["id"]]])]
    assert ContactCampaign.objects.get(pk=response.json()["id"]).status == ContactCampaign.Status.PENDING
