"""The demo's data: a tenant, an operator, a verified sender, the contacts of a CSV and one campaign brief.

Everything goes through the apps' public services (tenant_create, sender_identity_create, the CSV import
job, campaign_create, campaign_enrol_contacts), exactly as an operator or an integration would.

`python -m demo.seeding anchor-clock | seed ...` runs a step in a process of its own: the end-to-end test
uses that, because its own process is bound to the test suite's Redis broker while the processes under
test use a Redis database of their own.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
CONTACTS_CSV = BASE_DIR / "demo" / "contacts.csv"

DEMO_TENANT_NAME = "Demo Sales Team"
DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_EMAIL = "admin@demo-outreach.example"
DEMO_SENDER_EMAIL = "alex@demo-outreach.example"
DEMO_SENDER_NAME = "Alex from Northwind"
DEMO_CAMPAIGN = {
    "name": "Q3 ops automation outreach",
    "goal": "book a 20-minute demo call",
    "offer": "Northwind automates the repetitive operations work your team does by hand, live in two weeks",
    "ai_instructions": "Friendly and brief, no hype, at most 120 words per email, one clear question.",
    "allowed_link_domains": ["northwind.example"],
}


# The virtual clock starts at least this far ahead of the wall clock. Then the two never overlap during a run,
# so any stored timestamp says by itself which clock wrote it: Django's auto_now_add columns hold wall-clock
# time, the business columns virtual time (see ClockAnchor.as_virtual).
MIN_VIRTUAL_LEAD_SECONDS = 86400.0


@dataclass
class ClockAnchor:
    """The mapping between real and virtual time that every demo process shares."""

    real_start: float
    virtual_start: float
    speed: float

    def to_virtual(self, real: dt.datetime) -> dt.datetime:
        seconds = self.virtual_start + (real.timestamp() - self.real_start) * self.speed
        return dt.datetime.fromtimestamp(seconds, dt.UTC)

    def as_virtual(self, stamp: dt.datetime) -> dt.datetime:
        """A stored timestamp on the virtual clock, whichever clock wrote it: anything before the virtual
        start was written by the wall clock (an auto_now_add column) and is converted."""
        if stamp.timestamp() >= self.virtual_start or self.speed == 1.0:
            return stamp
        return self.to_virtual(stamp)

    def virtual_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.virtual_start + (time.time() - self.real_start) * self.speed, dt.UTC)


@dataclass
class SeedResult:
    tenant_id: int
    tenant_slug: str
    campaign_id: int
    sender_identity_id: int
    sender_status: str
    admin_username: str
    admin_password: str
    api_key: str
    import_job_id: int
    imported_rows: int
    error_rows: int
    leads: int
    contact_ids: list[int] = field(default_factory=list)
    contact_campaign_ids: list[int] = field(default_factory=list)
    emails: dict[str, int] = field(default_factory=dict)  # email -> contact id


def next_monday_morning(now: float | None = None, *, hour: int = 6) -> float:
    """Epoch seconds of the coming Monday at `hour`:00 UTC: a predictable start inside the send window."""
    moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC)
    days = (7 - moment.weekday()) % 7 or 7
    start = (moment + dt.timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.timestamp()


def virtual_start_before_monday(*, speed: float, setup_real_seconds: float, hour: int = 6) -> float:
    """A virtual start such that the campaign, once the processes are up and the contacts seeded (about
    `setup_real_seconds` of real time, which the fast clock turns into hours or days), starts near a Monday
    `hour`:00 UTC: the first mails go out on a Monday instead of waiting out a weekend.

    Always more than a day ahead of the wall clock (see ClockAnchor.as_virtual), so a week later if needed.
    """
    start = next_monday_morning(hour=hour) - setup_real_seconds * speed
    while start < time.time() + MIN_VIRTUAL_LEAD_SECONDS:
        start += 7 * 86400
    return start


def clock_anchor(*, virtual_start: float | None = None) -> ClockAnchor:
    """Anchor the shared virtual clock (settings.REDIS_URL) now; every process started later reads it."""
    from django.conf import settings

    from outreach import clock

    real_start = time.time()
    virtual = real_start if virtual_start is None else virtual_start
    clock.start_virtual_clock(virtual_start=virtual)
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
    from django.contrib.auth import get_user_model

    from campaigns.api.services import campaign_create
    from campaigns.services import campaign_enrol_contacts
    from contacts.imports import import_job_create
    from contacts.models import Contact, ImportJob, Lead
    from messaging.models import EmailSenderIdentity
    from messaging.sendgrid.identities import sender_identity_create, sender_identity_sync
    from outreach.tenancy.access_services import membership_add
    from outreach.tenancy.models import Role
    from outreach.tenancy.services import api_key_create, tenant_create

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


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.seeding")
    sub = parser.add_subparsers(dest="command", required=True)
    anchor = sub.add_parser("anchor-clock", help="anchor the shared virtual clock; prints the anchor as JSON")
    anchor.add_argument("--virtual-start", type=float, default=None, help="epoch seconds (default: now)")
    seed = sub.add_parser("seed", help="seed tenant, sender, contacts, campaign and enrol; prints JSON")
    seed.add_argument("--csv", type=Path, default=CONTACTS_CSV)
    seed.add_argument("--admin-password", default=None)
    seed.add_argument("--no-enrol", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    if args.command == "anchor-clock":
        print(json.dumps(asdict(clock_anchor(virtual_start=args.virtual_start))))
        return 0
    result = demo_seed(csv_text=args.csv.read_text(encoding="utf-8"), admin_password=args.admin_password,
                       enrol=not args.no_enrol)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
