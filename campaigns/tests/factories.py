import json
from pathlib import Path

import factory

from campaigns.models import Campaign, CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from contacts.tests.factories import ContactFactory
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach import clock
from outreach.tenancy.tests.factories import TenantFactory
from outreach.testing import broker_messages, broker_purge


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Q4 outreach {n}")
    goal = "Book a 20-minute demo"
    offer = "Onboarding automation that halves time-to-first-shipment"
    sender_identity = factory.SubFactory(EmailSenderIdentityFactory, tenant=factory.SelfAttribute("..tenant"))
    status = Campaign.Status.ACTIVE


class ContactCampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactCampaign

    tenant = factory.SubFactory(TenantFactory)
    campaign = factory.SubFactory(CampaignFactory, tenant=factory.SelfAttribute("..tenant"))
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    channel = "email"


class CampaignPlanVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignPlanVersion

    contact_campaign = factory.SubFactory(ContactCampaignFactory)
    tenant = factory.SelfAttribute("contact_campaign.tenant")
    version = factory.Sequence(lambda n: n + 1)
    plan_json = factory.LazyAttribute(lambda o: {"version": "1.0", "v": o.version})
    plan_hash = factory.Sequence(lambda n: f"{n:064x}")
    source = CampaignPlanVersion.Source.MANUAL


class ScheduledActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledAction

    contact_campaign = factory.SubFactory(ContactCampaignFactory)
    tenant = factory.SelfAttribute("contact_campaign.tenant")
    kind = ScheduledAction.Kind.TIMEOUT
    node_id = "email_intro"
    node_visit = 1
    event = "no_open"
    due_at = factory.LazyFunction(clock.now)
    dedupe_key = factory.Sequence(lambda n: f"sa:{n}")
    campaign_id = factory.SelfAttribute("contact_campaign.campaign_id")


class CampaignTransitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignTransition

    contact_campaign = factory.SubFactory(ContactCampaignFactory)
    tenant = factory.SelfAttribute("contact_campaign.tenant")
    from_node_id = "email_intro"
    to_node_id = "email_bump"
    event = "no_open"
    node_visit = 1
    occurred_at = factory.LazyFunction(clock.now)


EXAMPLE_PLAN_PATH = Path(__file__).resolve().parent.parent / "examples" / "example_plan.json"


def example_plan() -> dict:
    """The spec's example plan (docs/plan-dsl.md), a fresh copy each call."""
    return json.loads(EXAMPLE_PLAN_PATH.read_text())


# --- test helpers (the engine's tests share them) ----------------------------------------------------------------

class FrozenClock:
    """Stands in for outreach.clock.now so a test can move time (timers are days long)."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        import datetime as dt

        self.now = self.now + dt.timedelta(**delta)
        return self.now


def freeze_clock(monkeypatch, start) -> FrozenClock:
    frozen = FrozenClock(start)
    monkeypatch.setattr(clock, "now", frozen)
    return frozen


def queued_tasks(queue: str = "campaign_execution") -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in a Celery queue on the test broker, oldest first."""
    return [(m["task"], m["args"]) for m in broker_messages(queue)]


def purge_queues(*queues: str) -> None:
    broker_purge(*(queues or ("campaign_execution", "campaign_creation")))


def started_contact_campaign(plan: dict | None = None, **kwargs) -> ContactCampaign:
    """A contact campaign on the example plan (or `plan`), started: its first message is queued."""
    from campaigns.services import contact_campaign_start, contact_campaign_store_plan

    cc = ContactCampaignFactory(**kwargs)
    contact_campaign_store_plan(contact_campaign=cc, plan=plan or example_plan(), source="manual")
    return contact_campaign_start(contact_campaign=cc)
