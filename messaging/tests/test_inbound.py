"""Inbound Parse: replies stored once, threaded to what they answer, classified, fed to the engine."""
from __future__ import annotations

import email.utils
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from campaigns.engine import EngineEvent
from campaigns.models import CampaignTransition, ContactCampaign
from campaigns.services import contact_campaign_handle_event
from messaging import compliance
from messaging.delivery import outbound_messages_deliver
from messaging.inbound import is_auto_reply
from messaging.models import ContactUnsubscribe, InboundMessage, OutboundMessage, WebhookDelivery
from messaging.simulator.inbound import encode_multipart
from messaging.simulator.server import start_simulator
from messaging.tests.factories import enrolled_message
from messaging.webhooks.processing import webhook_deliveries_process
from outreach import clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    handle = start_simulator(port=0, seed=9, auto_emit=False)
    settings.SENDGRID_API_HOST = handle.base_url
    yield handle
    handle.stop()


@pytest.fixture
def inbound_url(settings):
    settings.SENDGRID_INBOUND_SECRET = "s3cret-inbound"
    return "/webhooks/sendgrid/inbound/s3cret-inbound"


def sent_message(email: str = "dana@acme.example") -> OutboundMessage:
    message = enrolled_message(email=email)
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    return message


def reply_headers(*, to_message: OutboundMessage | None, sender: str, subject: str = "Re: Quick idea for Acme",
                  message_id: str | None = None, references: str | None = None, **extra: str) -> dict[str, str]:
    headers = {
        "From": f"Dana <{sender}>",
        "To": "rep@seller.example",
        "Subject": subject,
        "Date": email.utils.format_datetime(clock.now()),
        "Message-ID": message_id or email.utils.make_msgid(domain="acme.example"),
    }
    if to_message is not None:
        headers["In-Reply-To"] = to_message.message_id_header
        headers["References"] = references or to_message.message_id_header
    headers.update(extra)
    return headers


def parsed_form(headers: dict[str, str], text: str) -> tuple[bytes, str]:
    block = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return encode_multipart([
        ("headers", block), ("text", text), ("html", f"<div>{text}</div>"), ("from", headers["From"]),
        ("to", headers["To"]), ("subject", headers["Subject"]),
        ("envelope", '{"to": ["rep@seller.example"], "from": "x@acme.example"}'),
        ("charsets", '{"text": "UTF-8", "html": "UTF-8", "subject": "UTF-8"}'), ("SPF", "pass"),
    ])


def raw_form(headers: dict[str, str], text: str) -> tuple[bytes, str]:
    message = EmailMessage(policy=SMTP)
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(f"<p>{text}</p>", subtype="html")
    return encode_multipart([("email", message.as_string()), ("from", headers["From"]), ("to", headers["To"]),
                             ("subject", headers["Subject"]), ("envelope", '{"to": ["rep@seller.example"]}')])


def post_and_process(client, url: str, form: tuple[bytes, str]):
    body, content_type = form
    response = client.post(url, data=body, content_type=content_type)
    ids = list(WebhookDelivery.objects.filter(kind="sendgrid_inbound", status="pending").values_list("id", flat=True))
    webhook_deliveries_process(delivery_ids=ids)
    return response


def cc_of(message: OutboundMessage) -> ContactCampaign:
    return ContactCampaign.objects.get(id=message.contact_campaign_id)


def test_reply_is_threaded_to_the_follow_up_it_answers_and_moves_the_campaign(client, sim, inbound_url):
    first = sent_message()
    contact_campaign_handle_event(contact_campaign_id=first.contact_campaign_id, event=EngineEvent(
        type="click", occurred_at=clock.now(), node_id="email_intro", node_visit=first.node_visit,
        outbound_message_id=first.id))
    follow_up = OutboundMessage.objects.get(contact_campaign_id=first.contact_campaign_id, node_id="email_hot")
    outbound_messages_deliver(outbound_message_ids=[follow_up.id])
    follow_up.refresh_from_db()
    headers = reply_headers(to_message=follow_up, sender=first.to_address,
                            references=f"{first.message_id_header} {follow_up.message_id_header}")

    response = post_and_process(client, inbound_url, parsed_form(
        headers, "Sounds great, can we set up a call next Tuesday?\n\nOn Mon, Sam wrote:\n> Glad it caught your eye."))

    assert response.status_code == 200
    reply = InboundMessage.objects.get()
    assert reply.outbound_message_id == follow_up.id and reply.tenant_id == first.tenant_id
    assert reply.message_id_header == headers["Message-ID"] and reply.from_email == first.to_address
    assert reply.classification == "positive" and not reply.is_auto_reply
    assert WebhookDelivery.objects.get().status == "processed"
    assert CampaignTransition.objects.filter(contact_campaign_id=first.contact_campaign_id,
                                             event="reply_positive", from_node_id="email_hot").exists()
    assert cc_of(first).current_node_id == "stop_replied"


def test_raw_mode_reply_is_parsed_with_the_email_package_and_threaded_through_references(client, sim, inbound_url):
    message = sent_message()
    headers = reply_headers(to_message=None, sender=message.to_address,
                            References=f"<unrelated@x.example> {message.message_id_header}")

    post_and_process(client, inbound_url, raw_form(headers, "Not interested, thanks."))

    reply = InboundMessage.objects.get()
    assert reply.outbound_message_id == message.id and reply.text.strip() == "Not interested, thanks."
    assert reply.classification == "negative"


def test_the_same_reply_twice_is_stored_once(client, sim, inbound_url):
    message = sent_message()
    headers = reply_headers(to_message=message, sender=message.to_address)
    post_and_process(client, inbound_url, parsed_form(headers, "Tell me more."))
    # SendGrid retrying the identical POST, and the same mail arriving again in another form.
    again = post_and_process(client, inbound_url, parsed_form(headers, "Tell me more."))
    post_and_process(client, inbound_url, raw_form(headers, "Tell me more."))

    assert again.status_code == 200
    assert InboundMessage.objects.count() == 1
    assert CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                             event__startswith="reply").count() == 1


def test_wrong_secret_is_404_and_stores_nothing(client, inbound_url):
    body, content_type = parsed_form(reply_headers(to_message=None, sender="a@acme.example"), "hi")
    response = client.post("/webhooks/sendgrid/inbound/guess", data=body, content_type=content_type)
    assert response.status_code == 404 and WebhookDelivery.objects.count() == 0


def test_a_post_that_is_not_an_inbound_form_is_400(client, inbound_url):
    response = client.post(inbound_url, data=b'{"a": 1}', content_type="application/json")
    assert response.status_code == 400 and WebhookDelivery.objects.count() == 0


def test_out_of_office_auto_reply_feeds_reply_ooo_with_the_return_date(client, sim, inbound_url):
    message = sent_message()
    headers = reply_headers(to_message=message, sender=message.to_address, subject="Automatic reply: Quick idea",
                            **{"Auto-Submitted": "auto-replied"})

    post_and_process(client, inbound_url, parsed_form(
        headers, "I am out of the office until December 1, 2031 with limited access to email."))

    reply = InboundMessage.objects.get()
    assert reply.is_auto_reply and reply.classification == "ooo" and reply.return_date is not None
    assert reply.return_date.year == 2031
    transition = CampaignTransition.objects.get(contact_campaign_id=message.contact_campaign_id, event="reply_ooo")
    assert transition.detail.get("return_date", "").startswith("2031") or "2031" in str(transition.detail)


@pytest.mark.parametrize("headers, subject, text, expected", [
    ({"auto-submitted": "auto-replied"}, "Re: x", "hello", True),
    ({"auto-submitted": "no"}, "Re: x", "Thanks, interested.", False),
    ({"x-autoreply": "yes"}, "Re: x", "hello", True),
    ({"x-autorespond": "1"}, "Re: x", "hello", True),
    ({"precedence": "auto_reply"}, "Re: x", "hello", True),
    ({}, "Out of Office: Quick idea", "hello", True),
    ({}, "Re: x", "I'm currently away on vacation and will be back on May 2.", True),
    ({}, "Re: x", "Yes please, send me times for a call.", False),
])
def test_auto_reply_detection(headers, subject, text, expected):
    assert is_auto_reply(headers=headers, subject=subject, text=text) is expected


def test_stop_request_opts_the_address_out_and_it_is_never_mailed_again(client, sim, inbound_url):
    message = sent_message()
    headers = reply_headers(to_message=message, sender=message.to_address)

    post_and_process(client, inbound_url, parsed_form(headers, "Please remove me from your list."))

    reply = InboundMessage.objects.get()
    assert reply.stop_request
    optout = ContactUnsubscribe.objects.get(channel_value=message.to_address)
    assert optout.source == "reply"
    assert cc_of(message).status == "stopped"
    assert CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                             event="stop_request").exists()
    # A new campaign for the same address: send-time policy refuses it.
    later = enrolled_message(email=message.to_address, tenant=message.tenant)
    outbound_messages_deliver(outbound_message_ids=[later.id])
    later.refresh_from_db()
    assert later.status in (OutboundMessage.Status.SUPPRESSED, OutboundMessage.Status.CANCELED)
    assert len(sim.messages(to=message.to_address)) == 1


def test_reply_without_thread_headers_matches_the_senders_latest_message(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender=message.to_address.upper()), "Can you send pricing?"))
    assert InboundMessage.objects.get().outbound_message_id == message.id


def test_reply_from_a_stranger_is_kept_without_a_tenant(client, inbound_url):
    post_and_process(client, inbound_url, parsed_form(reply_headers(to_message=None, sender="who@else.example"),
                                                      "Who is this?"))
    reply = InboundMessage.objects.get()
    assert reply.tenant_id is None and reply.outbound_message_id is None
    assert WebhookDelivery.objects.get().status == "processed"


def test_mail_to_our_list_unsubscribe_mailto_records_an_opt_out(client, sim, inbound_url):
    message = sent_message()
    mailto = compliance.unsubscribe_mailto(tenant=message.tenant_id, channel="email", value=message.to_address)
    local_and_domain = mailto.removeprefix("mailto:").split("?", 1)[0]
    headers = reply_headers(to_message=None, sender=message.to_address, subject="unsubscribe", To=local_and_domain)

    post_and_process(client, inbound_url, parsed_form(headers, ""))

    assert ContactUnsubscribe.objects.filter(channel_value=message.to_address).exists()
    assert InboundMessage.objects.count() == 0
    assert cc_of(message).status == "stopped"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_simulator_replies_arrive_over_http_threaded_and_classified(live_server, settings):
    settings.SENDGRID_INBOUND_SECRET = "live-secret"
    handle = start_simulator(port=0, seed=4, auto_emit=False,
                             inbound_url=f"{live_server.url}/webhooks/sendgrid/inbound/live-secret")
    settings.SENDGRID_API_HOST = handle.base_url
    try:
        messages = {kind: sent_message(f"{kind}@acme.example") for kind in ("reply", "ooo", "stop")}
        handle.flush(timeout=20)
        posts = [d for d in handle.deliveries() if d["kind"] == "inbound"]
        assert len(posts) == 3 and all(d["status"] == "delivered" for d in posts), posts
        ids = list(WebhookDelivery.objects.filter(kind="sendgrid_inbound").values_list("id", flat=True))
        assert len(ids) == 3
        webhook_deliveries_process(delivery_ids=ids)

        replies = {r.from_email.split("@")[0]: r for r in InboundMessage.objects.all()}
        for kind, message in messages.items():
            assert replies[kind].outbound_message_id == message.id
        # The label itself is the classifier's business (outreach.ai.replies); here: a human reply.
        assert replies["reply"].classification in ("positive", "neutral") and not replies["reply"].is_auto_reply
        assert CampaignTransition.objects.filter(contact_campaign_id=messages["reply"].contact_campaign_id,
                                                 event__startswith="reply_").exists()
        assert replies["ooo"].is_auto_reply and replies["ooo"].classification == "ooo"
        assert replies["stop"].stop_request
        assert ContactUnsubscribe.objects.filter(channel_value="stop@acme.example", source="reply").exists()
    finally:
        handle.stop()
