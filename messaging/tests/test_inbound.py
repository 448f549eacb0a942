"""Inbound Parse: replies stored once, threaded to what they answer, classified, fed to the engine."""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import logging
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from campaigns.engine import EngineEvent
from campaigns.models import CampaignTransition, ContactCampaign
from campaigns.services import contact_campaign_handle_event
from messaging import compliance
from messaging.delivery import outbound_messages_deliver
from messaging.inbound import ParsedInbound, inbound_match_outbound, is_auto_reply
from messaging.models import (
    ContactUnsubscribe,
    EmailSenderIdentity,
    InboundMessage,
    OutboundMessage,
    WebhookDelivery,
)
from messaging.tests.conftest import INBOUND_SECRET
from messaging.tests.factories import (
    TEST_PLAN,
    EmailSenderIdentityFactory,
    OutboundMessageFactory,
    enrolled_message,
)
from messaging.webhooks.processing import webhook_deliveries_process
from outreach import clock
from simulators.sendgrid.inbound import encode_multipart
from simulators.sendgrid.server import start_simulator
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db






@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=9) as handle:
        yield handle


def sent_message(email: str = "dana@acme.example", plan: dict | None = None) -> OutboundMessage:
    message = enrolled_message(email=email, plan=plan or TEST_PLAN)
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


def basic_auth(username: str = "inbound", password: str = INBOUND_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post_and_process(client, url: str, form: tuple[bytes, str]):
    body, content_type = form
    response = client.post(url, data=body, content_type=content_type, HTTP_AUTHORIZATION=basic_auth())
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


@pytest.mark.parametrize("authorization", [None, basic_auth(password="guess"), basic_auth(username="other"),
                                           "Bearer s3cret-inbound", "Basic !!!"])
def test_missing_or_wrong_basic_auth_is_401_with_a_challenge_and_stores_nothing(client, inbound_url, authorization):
    body, content_type = parsed_form(reply_headers(to_message=None, sender="a@acme.example"), "hi")
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.post(inbound_url, data=body, content_type=content_type, **extra)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic ")
    assert WebhookDelivery.objects.count() == 0


def test_the_secret_in_the_url_path_is_refused_unless_the_deprecation_setting_allows_it(client, inbound_url,
                                                                                        settings):
    body, content_type = parsed_form(reply_headers(to_message=None, sender="a@acme.example"), "hi")
    legacy = f"{inbound_url}/{INBOUND_SECRET}"
    assert client.post(legacy, data=body, content_type=content_type).status_code == 404
    assert WebhookDelivery.objects.count() == 0

    settings.SENDGRID_INBOUND_SECRET_IN_PATH = True
    assert client.post(f"{inbound_url}/guess", data=body, content_type=content_type).status_code == 404
    assert client.post(legacy, data=body, content_type=content_type).status_code == 200
    assert WebhookDelivery.objects.count() == 1


def test_the_inbound_secret_never_reaches_a_log_line(client, inbound_url, settings, caplog):
    """The console handler's filter (settings.LOGGING) rewrites records before any handler formats them."""
    import io
    import logging.config

    from django.utils.module_loading import import_string

    spec = settings.LOGGING["filters"]["redact_secrets"]
    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(import_string(spec["()"])())
    logging.getLogger("django").addHandler(handler)
    try:
        body, content_type = parsed_form(reply_headers(to_message=None, sender="a@acme.example"), "hi")
        client.post(f"{inbound_url}/{INBOUND_SECRET}", data=body, content_type=content_type)  # 404, logged
        logging.getLogger("django.request").warning("seen https://inbound:%s@web.example/x", INBOUND_SECRET)
    finally:
        logging.getLogger("django").removeHandler(handler)

    logged = stream.getvalue()
    assert "Not Found: /webhooks/sendgrid/inbound/[redacted]" in logged
    assert INBOUND_SECRET not in logged and "https://[redacted]@web.example/x" in logged


def test_a_post_that_is_not_an_inbound_form_is_400(client, inbound_url):
    response = client.post(inbound_url, data=b'{"a": 1}', content_type="application/json",
                           HTTP_AUTHORIZATION=basic_auth())
    assert response.status_code == 400 and WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize("field", ["envelope", "charsets"])
def test_an_inbound_json_field_nested_a_thousand_levels_deep_is_400_not_a_crash(client, inbound_url, field):
    headers = reply_headers(to_message=None, sender="a@acme.example")
    body, content_type = encode_multipart([("headers", "\r\n".join(f"{k}: {v}" for k, v in headers.items())),
                                           ("text", "hi"), ("from", "a@acme.example"),
                                           (field, "[" * 1000 + "]" * 1000)])
    response = client.post(inbound_url, data=body, content_type=content_type, HTTP_AUTHORIZATION=basic_auth())
    assert response.status_code == 400 and field in response.json()["detail"]
    assert WebhookDelivery.objects.count() == 0


def test_a_large_inbound_post_is_stored_without_its_attachments_and_the_reply_is_still_read(
    client, sim, inbound_url, settings,
):
    settings.SENDGRID_INBOUND_STORED_MAX_BYTES = 64 * 1024
    message = sent_message()
    headers = reply_headers(to_message=message, sender=message.to_address)
    body, content_type = parsed_form(headers, "Tell me more.")
    boundary = content_type.split("boundary=", 1)[1].strip('"')
    attachment = (f'--{boundary}\r\nContent-Disposition: form-data; name="attachment1"; filename="deck.pdf"\r\n'
                  f"Content-Type: application/pdf\r\n\r\n").encode() + b"%PDF" + b"x" * 2_000_000 + b"\r\n"
    body = body.replace(f"--{boundary}--".encode(), attachment + f"--{boundary}--".encode())

    response = post_and_process(client, inbound_url, (body, content_type))

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(kind="sendgrid_inbound")
    assert len(bytes(delivery.body)) < 64 * 1024 and delivery.status == "processed"
    assert delivery.headers["dropped"] == ["attachment1: file deck.pdf (2000004 bytes)"]
    assert delivery.headers["received_bytes"] == len(body)
    reply = InboundMessage.objects.get()
    assert reply.outbound_message_id == message.id and "Tell me more." in reply.text
    # SendGrid's retry of the same POST is still recognised as a repeat.
    assert client.post(inbound_url, data=body, content_type=content_type,
                       HTTP_AUTHORIZATION=basic_auth()).json() == {"status": "duplicate"}


def test_out_of_office_auto_reply_feeds_reply_ooo_with_the_return_date(client, sim, inbound_url):
    message = sent_message()
    headers = reply_headers(to_message=message, sender=message.to_address, subject="Automatic reply: Quick idea",
                            **{"Auto-Submitted": "auto-replied"})

    back = (clock.now() + dt.timedelta(days=40)).date()  # return dates far ahead are not believed
    post_and_process(client, inbound_url, parsed_form(
        headers, f"I am out of the office with limited access to email, back on {back:%B} {back.day}, {back.year}."))

    reply = InboundMessage.objects.get()
    assert reply.is_auto_reply and reply.classification == "ooo" and reply.return_date == back
    transition = CampaignTransition.objects.get(contact_campaign_id=message.contact_campaign_id, event="reply_ooo")
    assert str(transition.detail.get("return_date", "")).startswith(back.isoformat())


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
    from campaigns.services import campaign_enrol_contacts
    from campaigns.tests.factories import CampaignFactory

    campaign = CampaignFactory(tenant=message.tenant, sender_identity=message.sender_identity)
    [again] = campaign_enrol_contacts(campaign=campaign, contact_ids=[message.contact_id], plan=TEST_PLAN)
    later = OutboundMessage.objects.filter(contact_campaign=again).order_by("id").first()
    outbound_messages_deliver(outbound_message_ids=[later.id])
    later.refresh_from_db()
    assert later.status in (OutboundMessage.Status.SUPPRESSED, OutboundMessage.Status.CANCELED)
    assert len(sim.messages(to=message.to_address)) == 1


def test_stop_request_from_a_colleague_the_mail_was_forwarded_to_opts_out_both_addresses(client, sim, inbound_url):
    message = sent_message("dana@acme.example")
    other_tenant = sent_message("lee@acme.example")
    headers = reply_headers(to_message=message, sender="Lee@ACME.example")  # threaded, but another person

    post_and_process(client, inbound_url, parsed_form(headers, "Please remove me from your list."))

    reply = InboundMessage.objects.get()
    assert reply.stop_request and reply.outbound_message_id == message.id
    optouts = ContactUnsubscribe.objects.filter(tenant_id=message.tenant_id, source="reply")
    assert {o.channel_value for o in optouts} == {"dana@acme.example", "lee@acme.example"}
    # The colleague asked this tenant, not every tenant that ever mailed them.
    assert not ContactUnsubscribe.objects.filter(tenant_id=other_tenant.tenant_id).exists()


def test_stop_request_from_a_sender_the_validator_refuses_still_opts_out_the_mailed_address(
        client, sim, inbound_url, caplog):
    message = sent_message("dana@acme.example")
    headers = reply_headers(to_message=message, sender="lee..x@acme.example")

    with caplog.at_level(logging.WARNING, logger="messaging.inbound"):
        post_and_process(client, inbound_url, parsed_form(headers, "Please remove me from your list."))

    assert WebhookDelivery.objects.get().status == "processed"
    assert list(ContactUnsubscribe.objects.values_list("channel_value", flat=True)) == ["dana@acme.example"]
    assert "lee..x@acme.example" in caplog.text and "not a valid address" in caplog.text


def reply_to_of(message: OutboundMessage) -> str:
    return EmailSenderIdentity.objects.get(id=message.sender_identity_id).reply_to


def test_reply_without_thread_headers_matches_the_senders_latest_message(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender=message.to_address.upper(), To=reply_to_of(message)),
        "Can you send pricing?"))
    assert InboundMessage.objects.get().outbound_message_id == message.id


def reply_transitions(message: OutboundMessage):
    return CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id,
                                             event__startswith="reply")


def test_reply_without_thread_headers_goes_to_the_tenant_it_is_addressed_to_not_the_newest_mail(
        client, sim, inbound_url):
    ours = sent_message("jane@x.example")
    newer_other_tenant = sent_message("jane@x.example")
    assert newer_other_tenant.tenant_id != ours.tenant_id

    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender="jane@x.example", To=reply_to_of(ours)), "Can you send pricing?"))

    reply = InboundMessage.objects.get()
    assert reply.tenant_id == ours.tenant_id and reply.outbound_message_id == ours.id
    assert reply_transitions(ours).exists() and not reply_transitions(newer_other_tenant).exists()


def test_matching_by_recipient_reads_cc_and_falls_back_within_the_named_tenant_only():
    tenant_a_sender = EmailSenderIdentityFactory(from_email="rep@tenant-a.example")
    tenant_b_sender = EmailSenderIdentityFactory(from_email="rep@tenant-b.example")
    mine = OutboundMessageFactory(tenant=tenant_a_sender.tenant, sender_identity=tenant_a_sender,
                                  to_address="jane@x.example", status="sent", sent_at=clock.now())
    OutboundMessageFactory(tenant=tenant_b_sender.tenant, sender_identity=tenant_b_sender,
                           to_address="jane@x.example", status="sent", sent_at=clock.now())
    parsed = ParsedInbound(message_id="<fresh@x.example>", in_reply_to="", references="",
                           from_email="jane@x.example", to=["someone@else.example"], cc=["REP@tenant-a.example"],
                           subject="hello", text="Can you send pricing?", html="", headers_text="")
    assert inbound_match_outbound(parsed=parsed) == mine


@pytest.mark.parametrize("to, cc", [
    ("someone@else.example", ""),  # no tenant named: cannot tell whose mail this answers
    ("{a}", "{b}"),  # both tenants named, and both mailed the sender
])
def test_reply_whose_tenant_cannot_be_told_is_stored_unmatched_and_moves_no_campaign(
        client, sim, inbound_url, to, cc):
    first, second = sent_message("jane@x.example"), sent_message("jane@x.example")
    addresses = {"a": reply_to_of(first), "b": reply_to_of(second)}
    extra = {"Cc": cc.format(**addresses)} if cc else {}
    headers = reply_headers(to_message=None, sender="jane@x.example", To=to.format(**addresses), **extra)

    post_and_process(client, inbound_url, parsed_form(headers, "Can you send pricing?"))

    reply = InboundMessage.objects.get()
    assert reply.tenant_id is None and reply.outbound_message_id is None
    assert WebhookDelivery.objects.get().status == "processed"
    assert not reply_transitions(first).exists() and not reply_transitions(second).exists()


def test_stop_request_whose_tenant_cannot_be_told_opts_out_in_every_tenant_that_mailed_the_address(
        client, sim, inbound_url):
    first, second = sent_message("jane@x.example"), sent_message("jane@x.example")
    bystander = sent_message("someone-else@x.example")

    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender="jane@x.example", To="someone@else.example"),
        "Please remove me from your list."))

    reply = InboundMessage.objects.get()
    assert reply.stop_request and reply.tenant_id is None
    optouts = ContactUnsubscribe.objects.filter(channel_value="jane@x.example")
    assert {o.tenant_id for o in optouts} == {first.tenant_id, second.tenant_id}
    assert {o.source for o in optouts} == {"reply"}
    assert cc_of(first).status == cc_of(second).status == "stopped"
    assert not ContactUnsubscribe.objects.filter(tenant_id=bystander.tenant_id).exists()


@pytest.mark.parametrize("named", [1, 2])
def test_stop_request_to_tenants_that_never_mailed_the_sender_opts_the_sender_out_there(client, inbound_url, named):
    senders = [EmailSenderIdentityFactory() for _ in range(named)]
    extra = {"Cc": senders[1].reply_to} if named == 2 else {}

    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender="new@x.example", To=senders[0].reply_to, **extra),
        "Please remove me from your list."))

    reply = InboundMessage.objects.get()
    assert reply.outbound_message_id is None and reply.stop_request
    assert reply.tenant_id == (senders[0].tenant_id if named == 1 else None)
    optouts = ContactUnsubscribe.objects.filter(channel_value="new@x.example")
    assert {o.tenant_id for o in optouts} == {s.tenant_id for s in senders}


def test_our_list_unsubscribe_mailto_among_the_recipients_names_the_tenant(client, sim, inbound_url):
    ours = sent_message("jane@x.example")
    sent_message("jane@x.example")  # newer, another tenant
    # The mailto of another address of ours (e.g. a forwarded mail): its tag names the tenant, but its
    # HMAC does not match Jane, so it is a reply, not an opt-out.
    mailto = compliance.unsubscribe_mailto(tenant=ours.tenant_id, channel="email", value="old@x.example")
    to = mailto.removeprefix("mailto:").split("?", 1)[0]

    post_and_process(client, inbound_url, parsed_form(
        reply_headers(to_message=None, sender="jane@x.example", To=to), "Can you send pricing?"))

    assert InboundMessage.objects.get().outbound_message_id == ours.id
    assert not ContactUnsubscribe.objects.exists()


WITHIN_PLAN = {
    "version": "1.0", "timezone": "UTC", "startNodeId": "email_intro",
    "nodes": [
        {"id": "email_intro", "type": "send", "channel": "email",
         "message": {"subject": "Quick idea for Acme", "text": "Hi Dana, a quick idea.\n\nSam"},
         "transitions": [{"on": "reply", "within": "P1D", "to": "stop_quick_reply"},
                         {"on": "no_reply", "after": "P7D", "to": "stop_done"}]},
        {"id": "stop_quick_reply", "type": "stop", "reason": "replied"},
        {"id": "stop_done", "type": "stop", "reason": "completed"},
    ],
}


def test_a_reply_processed_late_counts_at_its_receipt_time_for_within_windows(client, sim, inbound_url,
                                                                             monkeypatch):
    from campaigns.tests.factories import freeze_clock

    frozen = freeze_clock(monkeypatch, dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
    message = sent_message(plan=WITHIN_PLAN)
    frozen.advance(hours=20)  # the reply arrives within the day the plan gives
    body, content_type = parsed_form(reply_headers(to_message=message, sender=message.to_address),
                                     "Sounds great, can we talk on Tuesday?")
    client.post(inbound_url, data=body, content_type=content_type, HTTP_AUTHORIZATION=basic_auth())
    delivery = WebhookDelivery.objects.get()
    frozen.advance(hours=10)  # ... but is processed (a retry, a backlog) after the window closed

    webhook_deliveries_process(delivery_ids=[delivery.id])

    transition = reply_transitions(message).get()
    assert transition.occurred_at == delivery.received_at
    assert cc_of(message).current_node_id == "stop_quick_reply"


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
    base = live_server.url.replace("http://", "http://inbound:live-secret@")  # basic auth, as Inbound Parse sends
    handle = start_simulator(port=0, seed=4, auto_emit=False, inbound_url=f"{base}/webhooks/sendgrid/inbound")
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
        # The label itself is the classifier's business (messaging.inbound.classification); here: a human reply.
        assert replies["reply"].classification in ("positive", "neutral") and not replies["reply"].is_auto_reply
        assert CampaignTransition.objects.filter(contact_campaign_id=messages["reply"].contact_campaign_id,
                                                 event__startswith="reply_").exists()
        assert replies["ooo"].is_auto_reply and replies["ooo"].classification == "ooo"
        assert replies["stop"].stop_request
        assert ContactUnsubscribe.objects.filter(channel_value="stop@acme.example", source="reply").exists()
    finally:
        handle.stop()


def test_a_large_raw_mode_post_is_stored_with_the_mails_attachments_emptied_and_its_text_kept():
    from messaging.inbound import inbound_parse
    from messaging.inbound.stored_form import inbound_form_for_storage

    headers = reply_headers(to_message=None, sender="dana@acme.example")
    mail = EmailMessage(policy=SMTP)
    for name, value in headers.items():
        mail[name] = value
    mail.set_content("Sounds good, call me.")
    mail.add_attachment(b"%PDF" + b"x" * 500_000, maintype="application", subtype="pdf", filename="deck.pdf")
    body, content_type = encode_multipart([("email", mail.as_string()), ("from", headers["From"]),
                                           ("to", headers["To"]), ("envelope", '{"to": ["rep@seller.example"]}')])

    stored = inbound_form_for_storage(body=body, content_type=content_type, limit=64 * 1024)

    assert len(stored.body) < 64 * 1024 and stored.dropped[0].startswith("email: attachment deck.pdf")
    parsed = inbound_parse(body=stored.body, content_type=stored.content_type)
    assert "Sounds good, call me." in parsed.text and parsed.from_email == "dana@acme.example"
    assert parsed.message_id == inbound_parse(body=body, content_type=content_type).message_id
