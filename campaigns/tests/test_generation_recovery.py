"""Plan generation resumes after a crash, a database outage or a killed worker, and quickly.

- store and start are one transaction: nothing can leave an enrolment `pending` with a plan;
- a pending enrolment that has a stored plan anyway is started by the retried job and by the sweep;
- a killed worker's leases run out within PLAN_GENERATION_LEASE_SECONDS (not a fixed 10 minutes) and the
  lease sweep publishes its batch again.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError

import campaigns.generation
from campaigns import generation_leases
from campaigns.ai_tasks import generate_plans, recover_generation_leases
from campaigns.generation import contact_campaign_generate_plan, contact_campaigns_requeue_stale_generation
from campaigns.generation_leases import batch_leased, generation_leases_expired, generation_locked
from campaigns.models import CampaignPlanVersion, ContactCampaign
from campaigns.services import contact_campaign_store_plan
from campaigns.tests.factories import ContactCampaignFactory, example_plan, purge_queues, queued_tasks
from outreach.ai.client import KEY_PREFIX, redis_client
from simulators.openai_stub.testing import clean_ai_redis_fixture  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline(settings, clean_ai_redis):
    settings.OPENAI_API_KEY = ""  # the built-in planner: no model call needed to prove the recovery
    purge_queues("campaign_creation")
    yield
    purge_queues("campaign_creation")


@pytest.fixture
def dead_worker(monkeypatch):
    """A worker killed -9 renews nothing: its heartbeat thread died with it."""
    monkeypatch.setattr(generation_leases, "_heartbeat", lambda beat, every: contextlib.nullcontext())


def test_a_database_outage_between_storing_and_starting_leaves_no_plan_and_the_retry_starts_it(offline, tenant,
                                                                                               monkeypatch):
    cc = ContactCampaignFactory(tenant=tenant)

    def db_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(campaigns.generation, "contact_campaign_start", db_gone)
    with pytest.raises(OperationalError):
        contact_campaign_generate_plan(contact_campaign=cc)
    cc.refresh_from_db()
    assert cc.status == ContactCampaign.Status.PENDING and cc.current_plan_version_id is None
    assert not CampaignPlanVersion.objects.filter(contact_campaign=cc).exists()
    monkeypatch.undo()

    assert contact_campaign_generate_plan(contact_campaign=cc) is not None  # the retried job
    cc.refresh_from_db()
    assert cc.status == ContactCampaign.Status.ACTIVE


def test_a_pending_enrolment_with_a_stored_plan_is_started_by_the_retried_job_without_a_second_plan(offline,
                                                                                                   tenant):
    cc = ContactCampaignFactory(tenant=tenant)
    version = contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="fallback")

    generate_plans([cc.pk])

    cc.refresh_from_db()
    assert cc.status == ContactCampaign.Status.ACTIVE and cc.current_plan_version_id == version.pk
    assert CampaignPlanVersion.objects.filter(contact_campaign=cc).count() == 1


def test_the_stale_generation_sweep_republishes_a_stored_but_unstarted_plan(offline, tenant):
    cc = ContactCampaignFactory(tenant=tenant)
    contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="fallback")

    assert contact_campaigns_requeue_stale_generation(older_than=dt.timedelta(0)) == 1
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans", [[cc.pk]])]


def test_a_killed_workers_generation_lock_runs_out_with_its_short_lease(offline, settings, dead_worker):
    settings.PLAN_GENERATION_LEASE_SECONDS = 30
    killed = generation_locked(4242)
    assert killed.__enter__() is True  # ...and the worker dies inside: never released

    ttl_ms = redis_client().pttl(f"{KEY_PREFIX}:generate:4242")
    assert 0 < ttl_ms <= 30_000  # free again within the lease, not after a fixed 600 s
    with generation_locked(4242) as locked:
        assert locked is False  # meanwhile a live worker's lock still keeps a second one off it


def test_a_killed_workers_batch_is_republished_by_the_lease_sweep_once_its_lease_ran_out(offline, tenant,
                                                                                        settings, dead_worker):
    settings.PLAN_GENERATION_LEASE_SECONDS = 30
    first, second = ContactCampaignFactory(tenant=tenant), ContactCampaignFactory(tenant=tenant)
    killed = batch_leased([first.pk, second.pk])  # kept referenced: a collected generator would clean up
    killed.__enter__()  # the job starts; its worker is killed

    assert generation_leases_expired() == []  # within the lease: maybe alive
    assert generation_leases_expired(now=time.time() + 31) == [first.pk, second.pk]
    assert generation_leases_expired(now=time.time() + 31) == []  # taken once

    settings.PLAN_GENERATION_LEASE_SECONDS = 0  # a lease that ran out already
    killed_again = batch_leased([first.pk])
    killed_again.__enter__()
    recover_generation_leases()
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans", [[first.pk]])]


def test_a_live_worker_renews_its_batch_lease_and_drops_it_when_done(offline, settings):
    settings.PLAN_GENERATION_LEASE_SECONDS = 3
    client = redis_client()
    renewed = threading.Event()
    with batch_leased([77]):
        first = client.zscore(f"{KEY_PREFIX}:generate:leases", "77")
        for _ in range(50):
            if client.zscore(f"{KEY_PREFIX}:generate:leases", "77") > first:
                renewed.set()
                break
            time.sleep(0.1)
    assert renewed.is_set()
    assert client.zscore(f"{KEY_PREFIX}:generate:leases", "77") is None
