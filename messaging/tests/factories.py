import factory

from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    EmailSenderIdentity,
    InboundMessage,
    MessageEvent,
    OutboundMessage,
    SendRateLimit,
    WebhookDelivery,
)
from outreach import clock
from outreach.tenancy.tests.factories import TenantFactory


class EmailSenderIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailSenderIdentity

    tenant = factory.SubFactory(TenantFactory)
    from_email = factory.Sequence(lambda n: f"rep{n}@seller.example")
    from_name = "Sam Seller"
    reply_to = factory.LazyAttribute(lambda o: o.from_email)
    status = EmailSenderIdentity.Status.VERIFIED


class OutboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboundMessage

    tenant = factory.SubFactory(TenantFactory)
    dedupe_key = factory.Sequence(lambda n: f"test:{n}")
    to_address = factory.Sequence(lambda n: f"to{n}@acme.example")
    subject = "Quick idea"
    body_text = "Hi there"
    node_id = "email_intro"


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    kind = WebhookDelivery.Kind.SENDGRID_EVENTS
    body = factory.Sequence(lambda n: f'[{{"n": {n}}}]'.encode())
    payload_hash = factory.Sequence(lambda n: f"{n:064x}")
    signature_valid = True


class MessageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageEvent

    tenant = factory.SubFactory(TenantFactory)
    event_type = "delivered"
    provider_event_id = factory.Sequence(lambda n: f"evt-{n}")
    dedupe_key = factory.Sequence(lambda n: f"content-{n}")
    email = "to@acme.example"
    occurred_at = factory.LazyFunction(clock.now)
    raw = factory.LazyAttribute(lambda o: {"event": o.event_type})


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundMessage

    tenant = factory.SubFactory(TenantFactory)
    message_id_header = factory.Sequence(lambda n: f"<reply-{n}@mail.example>")
    from_email = "dana@acme.example"
    subject = "Re: Quick idea"
    text = "Sounds interesting, tell me more."


class CommunicationSuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommunicationSuppression

    tenant = factory.SubFactory(TenantFactory)
    channel = "email"
    value = factory.Sequence(lambda n: f"suppressed{n}@acme.example")
    reason = "hard_bounce"


class ContactUnsubscribeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactUnsubscribe

    tenant = factory.SubFactory(TenantFactory)
    channel = "email"
    channel_value = factory.Sequence(lambda n: f"optout{n}@acme.example")
    source = "manual"


class SendRateLimitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SendRateLimit

    tenant = factory.SubFactory(TenantFactory)
    scope = SendRateLimit.Scope.TENANT
    key = ""
    per_hour = 500
