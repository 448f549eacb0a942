"""The demo's data: a tenant, an operator, a verified sender, the contacts of a CSV and one campaign brief.

Everything goes through the apps' public services (tenant_create, sender_identity_create, the CSV import
job, campaign_create, campaign_enrol_contacts), exactly as an operator or an integration would. The names
and the clock mapping are in demo/scenario.py; `python -m demo.steps` runs a step in a process of its own.

Imports the apps' services and models: import it after django.setup().
"""
from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib.auth import get_user_model

from campaigns.api.services import campaign_create
from campaigns.services import campaign_enrol_contacts
from contacts.imports import import_job_create
from contacts.interface import Contact, Lead
from contacts.models import ImportJob
from demo.scenario import (
    DEMO_ADMIN_EMAIL,
    DEMO_ADMIN_USERNAME,
    DEMO_CAMPAIGN,
    DEMO_SENDER_EMAIL,
    DEMO_SENDER_NAME,
    DEMO_TENANT_NAME,
    ClockAnchor,
    SeedResult,
)
from messaging.interface import EmailSenderIdentity
from messaging.sendgrid.identities import sender_identity_create, sender_identity_sync
from outreach import clock
from outreach.tenancy.access_services import membership_add
from outreach.tenancy.models import Role
from outreach.tenancy.services import api_key_create, tenant_create


def clock_anchor(*, virtual_start: float | None = None, real_start: float | None = None) -> ClockAnchor:
    """Anchor the shared virtual clock (settings.REDIS_URL) now; every process started later reads it.
    `real_start` writes back an existing anchor instead (after a Redis restart lost it)."""
    real_start = time.time() if real_start is None else real_start
    virtual = real_start if virtual_start is None else virtual_start
    clock.start_virtual_clock(virtual_start=virtual, real_start=real_start)
    return ClockAnchor(real_start=real_start, virtual_start=virtual, speed=float(settings.CLOCK_SPEED))


def _wait_for(predicate, *, timeout: float, interval: float = 0.25, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def demo_seed(*, csv_text: str, admin_password: str | None = None, enrol: bool = True,
              import_timeout: float = 120.0, tenant_name: str = DEMO_TENANT_NAME) -> SeedResult:
    """Seed the demo through the public services; the worker imports the CSV (queue lead_analysis) and the
    offline planner writes every plan (queue campaign_creation) after the enrolment."""
    tenant = tenant_create(name=tenant_name)
    password = admin_password or secrets.token_urlsafe(9)
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_ADMIN_USERNAME).first()
    if user is None:
        user = user_model.objects.create_superuser(username=DEMO_ADMIN_USERNAME, email=DEMO_ADMIN_EMAIL,
                                                   password=password)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership_add(tenant=tenant, user_identifier=user.get_username(), role=Role.OWNER, actor_role=Role.OWNER,
                   actor_label="demo")
    issued = api_key_create(tenant=tenant, role=Role.ADMIN, name="demo", created_by=user)

    # Registered with the simulator's Verified Senders API (it verifies at once unless told to wait).
    identity = sender_identity_create(tenant=tenant, from_email=DEMO_SENDER_EMAIL, from_name=DEMO_SENDER_NAME,
                                      reply_to=DEMO_SENDER_EMAIL, nickname="demo sender")
    if identity.status != EmailSenderIdentity.Status.VERIFIED:
        def verified() -> bool:
            sender_identity_sync(identity=identity)
            return identity.status == EmailSenderIdentity.Status.VERIFIED

        _wait_for(verified, timeout=30, interval=0.5, what="the sender identity to be verified")

    job = import_job_create(tenant=tenant, content=csv_text, filename="contacts.csv", actor_label="demo")
    job = _wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                    timeout=import_timeout, what="the CSV import job (is the worker consuming lead_analysis?)")
    if job.status != ImportJob.Status.DONE:
        raise RuntimeError(f"CSV import failed: {job.failure or job.errors[:5]}")

    campaign = campaign_create(tenant=tenant, sender_identity=identity, **DEMO_CAMPAIGN)
    contacts = dict(Contact.objects.filter(tenant=tenant).order_by("id").values_list("email", "id"))
    enrolments = []
    if enrol:
        enrolments = campaign_enrol_contacts(campaign=campaign, contact_ids=list(contacts.values()))
    return SeedResult(
        tenant_id=tenant.pk, tenant_slug=tenant.slug, campaign_id=campaign.pk, sender_identity_id=identity.pk,
        sender_status=identity.status, admin_username=user.get_username(), admin_password=password,
        api_key=issued.raw_key, import_job_id=job.pk, imported_rows=job.imported_rows, error_rows=job.error_rows,
        leads=Lead.objects.filter(tenant=tenant).count(), contact_ids=list(contacts.values()),
        contact_campaign_ids=[cc.pk for cc in enrolments], emails=contacts,
    )
