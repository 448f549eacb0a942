import factory

from contacts.models import Contact, ContactChannel, EmailValidationResult, ImportJob, Lead
from outreach.tenancy.tests.factories import TenantFactory


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Acme {n}")
    domain = factory.Sequence(lambda n: f"acme{n}.example")
    website_text = "We make onboarding software for mid-size logistics firms."


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    tenant = factory.SubFactory(TenantFactory)
    lead = factory.SubFactory(LeadFactory, tenant=factory.SelfAttribute("..tenant"))
    first_name = factory.Sequence(lambda n: f"Dana{n}")
    last_name = "Smith"
    title = "Head of Operations"
    email = factory.Sequence(lambda n: f"dana{n}@acme.example")
    timezone = "America/Los_Angeles"


class ContactChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactChannel

    contact = factory.SubFactory(ContactFactory)
    tenant = factory.SelfAttribute("contact.tenant")
    channel = "email"
    value = factory.SelfAttribute("contact.email")


class EmailValidationResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailValidationResult

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"checked{n}@example.com")
    verdict = EmailValidationResult.Verdict.VALID
    score = 0.97


class ImportJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportJob

    tenant = factory.SubFactory(TenantFactory)
    filename = "contacts.csv"
    content = "company,email\nAcme,dana@acme.example\n"
    total_rows = 1
