import factory

from campaigns.models import Campaign, CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from contacts.tests.factories import ContactFactory
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach import clock
from outreach.tenancy.tests.factories import TenantFactory


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
