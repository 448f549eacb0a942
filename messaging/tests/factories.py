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
    WebhookPayloadHash,
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

    @factory.post_generation
    def remembered_hash(self, create: bool, extracted: object, **kwargs: object) -> None:
        # A stored POST's hash is remembered for the retry window, as webhook_delivery_store does.
        if create:
            WebhookPayloadHash.objects.get_or_create(payload_hash=self.payload_hash,
                                                     defaults={"received_at": self.received_at})


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


# --- Helpers for delivery / webhook / inbound tests ------------------------------------------------
# (Functions, not module-level imports of campaigns: campaigns.tests.factories imports this module.)

TEST_PLAN = {
    "version": "1.0",
    "timezone": "UTC",
    "startNodeId": "email_intro",
    "nodes": [
        {
            "id": "email_intro", "type": "send", "channel": "email",
            "message": {"subject": "Quick idea for Acme",
                        "text": "Hi Dana,\n\nSee https://seller.example/demo for a demo.\n\nSam"},
            "transitions": [
                {"on": "reply", "to": "stop_replied"},
                {"on": "open", "to": "email_opened"},
                {"on": "click", "within": "P2D", "to": "email_hot"},
                {"on": "no_open", "after": "P3D", "to": "email_bump"},
                {"on": "no_reply", "after": "P7D", "to": "stop_done"},
            ],
        },
        {
            "id": "email_opened", "type": "send", "channel": "email",
            "message": {"subject": "Re: Quick idea for Acme", "text": "Following up <b>on</b> my note."},
            "transitions": [{"on": "reply", "to": "stop_replied"},
                            {"on": "no_reply", "after": "P4D", "to": "stop_done"}],
        },
        {
            "id": "email_hot", "type": "send", "channel": "email",
            "message": {"subject": "Re: Quick idea for Acme", "text": "Glad it caught your eye."},
            "transitions": [{"on": "reply", "to": "stop_replied"},
                            {"on": "no_reply", "after": "P4D", "to": "stop_done"}],
        },
        {
            "id": "email_bump", "type": "send", "channel": "email",
            "message": {"subject": "Re: Quick idea for Acme", "text": "Bumping this."},
            "transitions": [{"on": "reply", "to": "stop_replied"},
                            {"on": "no_reply", "after": "P4D", "to": "stop_done"}],
        },
        {"id": "stop_replied", "type": "stop", "reason": "replied"},
        {"id": "stop_done", "type": "stop", "reason": "completed"},
    ],
}


def enrolled_message(*, tenant=None, email: str | None = None, plan: dict | None = None, campaign=None,
                     sender_kwargs: dict | None = None) -> OutboundMessage:
    """A contact enrolled through the real campaigns service: its first outbox row, queued."""
    from campaigns.services import campaign_enrol_contacts
    from campaigns.tests.factories import CampaignFactory
    from contacts.tests.factories import ContactFactory

    if campaign is None:
        tenant = tenant or TenantFactory()
        sender = EmailSenderIdentityFactory(tenant=tenant, **(sender_kwargs or {}))
        campaign = CampaignFactory(tenant=tenant, sender_identity=sender)
    contact_kwargs = {"tenant": campaign.tenant}
    if email:
        contact_kwargs["email"] = email
    contact = ContactFactory(**contact_kwargs)
    [cc] = campaign_enrol_contacts(campaign=campaign, contact_ids=[contact.id], plan=plan or TEST_PLAN)
    return OutboundMessage.objects.filter(contact_campaign=cc).order_by("id").first()


def signed_headers(private_key, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers for Django's test client (HTTP_ prefixed) signing ``body`` like SendGrid does."""
    import time

    from simulators.sendgrid.signing import sign_event_payload

    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": sign_event_payload(private_key, ts, body),
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": ts,
    }


def sendgrid_event(message: OutboundMessage | None, event: str, *, timestamp: int | None = None,
                   email: str | None = None, **fields) -> dict:
    """A SendGrid event for one of our messages, as SendGrid would post it (custom args flattened)."""
    import time
    import uuid

    data = {
        "email": email or (message.to_address if message else "nobody@acme.example"),
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "event": event,
        "sg_event_id": uuid.uuid4().hex,
    }
    if message is not None:
        data["sg_message_id"] = f"{message.provider_message_id or 'x'}.filter0001.1.0"
        data["outbound_message_id"] = str(message.id)
        data["tenant_id"] = str(message.tenant_id)
    data.update(fields)
    return data
