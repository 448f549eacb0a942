"""Issue 11, through the real Inbound Parse endpoint and the worker's processing (not the classifier alone):
stop wins, bounces are bounces, HTML-only mail is read, quotes do not leak, unauthenticated replies are held,
and the reading stays linear on hostile bodies."""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import uuid
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from campaigns.models import CampaignTransition
from messaging.inbound.analysis import MailToRead, inbound_read
from messaging.inbound.selectors import NEEDS_REVIEW
from messaging.models import CommunicationSuppression, ContactUnsubscribe, InboundMessage, OutboundMessage
from messaging.tests.test_inbound import post_and_process, sent_message
from outreach import clock
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=11) as handle:
        yield handle


def form(fields: list[tuple[str, bytes | str, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body like SendGrid's, each field in its own charset."""
    boundary = "xYzZY" + uuid.uuid4().hex
    parts = []
    for name, value, charset in fields:
        data = value if isinstance(value, bytes) else value.encode(charset)
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                     f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def headers_for(message: OutboundMessage | None, *, sender: str, subject: str = "Re: Quick idea for Acme",
                **extra: str) -> dict[str, str]:
    headers = {"From": f"Dana <{sender}>", "To": "rep@seller.example", "Subject": subject,
               "Date": email.utils.format_datetime(clock.now()),
               "Message-ID": email.utils.make_msgid(domain="acme.example")}
    if message is not None:
        headers["In-Reply-To"] = message.message_id_header
        headers["References"] = message.message_id_header
    headers.update(extra)
    return headers


def parsed_mode(headers: dict[str, str], *, text: str | None = None, html: str | None = None,
                charset: str = "UTF-8", spf: str = "pass", dkim: str = "{@acme.example : pass}",
                spam_score: str | None = None) -> tuple[bytes, str]:
    block = "".join(f"{k}: {v}\n" for k, v in headers.items())
    fields = [("headers", block, "utf-8"), ("from", headers["From"], "utf-8"), ("to", headers["To"], "utf-8"),
              ("subject", headers["Subject"], charset), ("SPF", spf, "utf-8"), ("dkim", dkim, "utf-8"),
              ("envelope", '{"to": ["rep@seller.example"], "from": "x@acme.example"}', "utf-8")]
    charsets = {"subject": charset, "headers": "UTF-8"}
    if text is not None:
        fields.append(("text", text, charset))
        charsets["text"] = charset
    if html is not None:
        fields.append(("html", html, charset))
        charsets["html"] = charset
    if spam_score is not None:
        fields.append(("spam_score", spam_score, "utf-8"))
    fields.append(("charsets", json.dumps(charsets), "utf-8"))
    return form(fields)


def raw_mode(message: EmailMessage | bytes) -> tuple[bytes, str]:
    raw = message if isinstance(message, bytes) else message.as_bytes(policy=SMTP)
    return form([("email", raw, "utf-8"), ("envelope", '{"to": ["rep@seller.example"]}', "utf-8")])


def transitions(message: OutboundMessage) -> list[str]:
    return list(CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id)
                .exclude(event__in=["enrolled", "start", "sent"]).values_list("event", flat=True))


def opted_out(address: str) -> bool:
    return ContactUnsubscribe.objects.filter(channel_value=address).exists()


# --- 1. stop wins ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [
    {},
    {"Precedence": "bulk"},
    {"X-MS-Exchange-Inbox-Rules-Loop": "dana@acme.example"},
])
def test_a_stop_request_that_mentions_a_vacation_opts_out_whatever_the_bulk_headers(client, sim, inbound_url,
                                                                                    extra):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address, **extra),
        text="Please remove me, I'm on vacation anyway and don't want these emails."))

    reply = InboundMessage.objects.get()
    assert (reply.kind, reply.classification, reply.stop_request) == ("reply", "negative", True)
    assert opted_out(message.to_address)
    assert "stop_request" in transitions(message)


def test_a_stop_request_inside_an_out_of_office_still_opts_out(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address, subject="Automatic reply: Quick idea",
                    **{"Auto-Submitted": "auto-replied"}),
        text="I am out of the office until March 20.\n\nIf this is a sales email, please remove me from your list."))

    reply = InboundMessage.objects.get()
    assert (reply.kind, reply.classification, reply.stop_request) == ("auto_reply", "ooo", True)
    assert opted_out(message.to_address)


def test_an_icloud_vacation_reply_is_an_absence_by_its_header_whatever_its_wording(client, sim, inbound_url):
    # iCloud's vacation responder: no RFC 3834 header, a plain "Re:" subject, X-Apple-Action: VACATION
    # (sisimai/p5-sisimai#346 shows the real header set). The header beats the body, which names no absence.
    message = sent_message()
    named = clock.now().date() + dt.timedelta(days=10)
    mail = EmailMessage()
    for name, value in headers_for(message, sender=message.to_address, **{
            "X-Apple-Criteria": "{kind=VACATION,recipients=1396}", "X-Apple-Action": "VACATION",
            "X-Apple-UUID": "30a87ac7-16dc-4b7c-bf82-3a5c6f784ff8"}).items():
        mail[name] = value
    mail.set_content(f"Thanks for your message. I will answer it after {named.day} {named:%B} {named.year}.")
    post_and_process(client, inbound_url, raw_mode(mail))

    reply = InboundMessage.objects.get()
    assert (reply.kind, reply.classification, reply.return_date) == ("auto_reply", "ooo", named)
    assert "reply_ooo" in transitions(message)


def test_an_out_of_office_whose_weekday_contradicts_its_date_is_flagged_and_returns_on_the_later(
        client, sim, inbound_url):
    message = sent_message()
    named = clock.now().date() + dt.timedelta(days=10)
    wrong_weekday = (named + dt.timedelta(days=1)).strftime("%A")  # the nearest such day is the day after
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address, subject="Automatic reply: Quick idea",
                    **{"Auto-Submitted": "auto-replied"}),
        text=f"I am out of the office until {wrong_weekday}, {named:%B} {named.day}, {named.year}."))

    reply = InboundMessage.objects.get()
    assert (reply.kind, reply.classification) == ("auto_reply", "ooo")
    # "until" the later of the two (the weekday, the day after the date): back the day after that.
    assert reply.return_date == named + dt.timedelta(days=2)
    assert "weekday contradicts date" in reply.review_reason
    assert InboundMessage.objects.filter(NEEDS_REVIEW, pk=reply.pk).exists()
    assert "reply_ooo" in transitions(message)  # flagged, not held: the pause still happens


def test_a_yes_that_mentions_a_vacation_is_a_positive_reply_not_an_out_of_office(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address),
        text="Sounds good, on vacation until Friday, let's book a call next week."))

    reply = InboundMessage.objects.get()
    assert (reply.kind, reply.classification, reply.return_date) == ("reply", "positive", None)
    assert transitions(message) == ["reply_positive"]


@pytest.mark.parametrize("charset", ["UTF-8", "ISO-8859-1", "windows-1252"])
def test_an_html_only_unsubscribe_in_parsed_mode_is_a_stop_request(client, sim, inbound_url, charset):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), charset=charset,
        html="<html><body><table><tr><td><p>Désabonnez-moi, s'il vous plaît.</p></td></tr></table></body></html>"))

    reply = InboundMessage.objects.get()
    assert reply.stop_request and "Désabonnez-moi" in reply.new_text
    assert opted_out(message.to_address)


def test_an_html_only_unsubscribe_in_raw_mode_is_a_stop_request(client, sim, inbound_url):
    message = sent_message()
    mail = EmailMessage()
    for name, value in headers_for(message, sender=message.to_address).items():
        mail[name] = value
    mail.set_content("<div><div><p>Bitte <b>melden</b> Sie mich ab.</p></div></div>", subtype="html",
                     charset="iso-8859-2")
    post_and_process(client, inbound_url, raw_mode(mail))

    reply = InboundMessage.objects.get()
    assert reply.stop_request and opted_out(message.to_address)


def test_a_quoted_positive_pitch_does_not_leak_into_a_dutch_no(client, sim, inbound_url):
    message = sent_message()
    quoted = "\n".join(f"> {line}" for line in message.body_text.splitlines())
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address),
        text=f"Liever niet, dank je.\n\nOp di 3 mrt 2026 om 10:14 schreef Sam <sam@seller.example>:\n\n{quoted}\n"
             "> Klinkt goed? Prima, laten we bellen!"))

    reply = InboundMessage.objects.get()
    assert (reply.classification, reply.new_text) == ("negative", "Liever niet, dank je.")


# --- 2. bounces are bounces --------------------------------------------------------------------------


def dsn_for(message: OutboundMessage, *, status: str, action: str) -> bytes:
    """A Postfix-shaped RFC 3464 report about our message (the copy of our pitch inside sounds positive)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: rep@seller.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {email.utils.make_msgid(domain='mx.acme.example')}\r\n"
        f"Date: {email.utils.format_datetime(clock.now())}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n\r\n'
        "--B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.acme.example. I'm sorry to have to inform you that your message "
        "could not be delivered.\r\n\r\n"
        "--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {message.to_address}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--B1\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Message-ID: {message.message_id_header}\r\nSubject: Quick idea for Acme\r\n\r\n"
        "I think it's a great fit. Interested? Sounds good? Let's book a call.\r\n\r\n--B1--\r\n"
    ).encode("ascii")


def test_a_dsn_through_inbound_parse_bounces_the_outbox_row_and_suppresses_like_a_webhook_bounce(
        client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, raw_mode(dsn_for(message, status="5.1.1", action="failed")))

    inbound = InboundMessage.objects.get()
    assert (inbound.kind, inbound.bounce_type, inbound.classification) == ("bounce", "hard", "")
    message.refresh_from_db()
    assert message.delivery_status == "bounced"
    assert CommunicationSuppression.objects.filter(value=message.to_address, reason="hard_bounce").exists()
    assert not any(event.startswith("reply") for event in transitions(message))


def test_a_delayed_dsn_is_a_soft_bounce_and_suppresses_nothing(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, raw_mode(dsn_for(message, status="4.2.2", action="delayed")))

    inbound = InboundMessage.objects.get()
    assert (inbound.kind, inbound.bounce_type) == ("bounce", "soft")
    assert not CommunicationSuppression.objects.filter(value=message.to_address).exists()
    assert not any(event.startswith("reply") for event in transitions(message))


def test_a_mailbox_no_longer_in_use_notice_is_a_hard_bounce_not_a_reply(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address, **{"Auto-Submitted": "auto-replied"}),
        text="This mailbox is no longer in use. Please direct all enquiries to info@acme.example."))

    inbound = InboundMessage.objects.get()
    assert (inbound.kind, inbound.bounce_type) == ("bounce", "hard")
    assert CommunicationSuppression.objects.filter(value=message.to_address, reason="hard_bounce").exists()
    assert not any(event.startswith("reply") for event in transitions(message))


# --- 6. authenticated or held ------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [
    {"spf": "fail", "dkim": "{@acme.example : fail}"},
    {"spf": "softfail", "dkim": "none"},
    {"spam_score": "7.9"},
])
def test_an_unauthenticated_or_spam_positive_is_held_and_moves_no_plan(client, sim, inbound_url, auth):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great, let's book a call.", **auth))

    inbound = InboundMessage.objects.get()
    assert inbound.review_status == "held" and inbound.verdict in ("unauthenticated", "spam")
    assert inbound.classification == "positive"
    assert transitions(message) == []


@pytest.mark.parametrize("threshold, held", [(8.0, False), (6.0, True)])
def test_the_spam_score_that_holds_a_reply_is_the_setting(client, sim, inbound_url, settings, threshold, held):
    settings.INBOUND_SPAM_SCORE_HOLD = threshold
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great, let's book a call.", spam_score="6.5"))

    inbound = InboundMessage.objects.get()
    assert (inbound.verdict, inbound.review_status) == (("spam", "held") if held else ("pass", ""))
    assert transitions(message) == ([] if held else ["reply_positive"])


def test_a_held_stop_request_opts_out_only_the_address_it_came_from(client, sim, inbound_url):
    message = sent_message()
    forged = "someone.else@elsewhere.example"
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=forged), text="Unsubscribe me.", spf="fail", dkim="{@elsewhere.example : fail}"))

    inbound = InboundMessage.objects.get()
    assert inbound.review_status == "held" and inbound.stop_request
    assert opted_out(forged)
    assert not opted_out(message.to_address)
    assert transitions(message) == []


def test_spf_pass_with_dkim_fail_is_trusted(client, sim, inbound_url):
    message = sent_message()
    post_and_process(client, inbound_url, parsed_mode(
        headers_for(message, sender=message.to_address), text="Sounds great, let's book a call.",
        spf="pass", dkim="{@acme.example : fail}"))
    assert InboundMessage.objects.get().review_status == ""
    assert transitions(message) == ["reply_positive"]


# --- 4. linear time on hostile input -----------------------------------------------------------------


@pytest.mark.parametrize("text, html", [
    ("\n" * 1_000_000, ""),
    ("> quoted\n" * 120_000, ""),
    ("", "<div>" * 100_000 + "x" + "</div>" * 100_000),
    ("", "<div>" * 5_000 + "Please unsubscribe me" + "</div>" * 5_000),
    ("\n\n" * 4000 + "remove me", ""),
])
def test_hostile_bodies_are_read_and_the_reader_returns(settings, text, html):
    settings.OPENAI_API_KEY = ""
    mail = MailToRead(subject="Re: hi", text=text, html=html, headers={}, from_email="x@acme.example")
    reading = inbound_read(mail=mail, tenant=None, received_at=None)
    assert reading.kind == "reply"
    if "unsubscribe me" in html or "remove me" in text[-20:]:
        # The deeply nested text (below lxml's 255-level limit) and the text after 8 KB of blank lines count.
        assert reading.stop_request
