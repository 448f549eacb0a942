"""messaging.compliance: normalisation, opt-outs, suppressions and the send-time checks."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.tests.factories import ContactFactory
from messaging import compliance
from messaging.compliance import (
    send_block_reason,
    send_block_reasons,
    suppression_add,
    unsubscribe_record,
    unsubscribe_remove,
)
from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason, UnsubscribeSource
from messaging.tests.factories import CommunicationSuppressionFactory, ContactUnsubscribeFactory
from outreach import clock
from outreach.addresses import normalise_address
from outreach.errors import ApplicationError, NotFoundError
from outreach.tenancy.models import AuditEntry
from outreach.tenancy.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Dana.Smith@ACME.example ", "dana.smith@acme.example"),
    ("dana@acme.example", "dana@acme.example"),
])
def test_normalise_email_lower_cases_and_strips(raw, expected):
    assert normalise_address("email", raw) == expected


@pytest.mark.parametrize("raw", ["", "dana", "dana@", "@acme.example", "dana@@acme.example", "dana @acme.example"])
def test_normalise_email_rejects_invalid_addresses_naming_the_value_field(raw):
    with pytest.raises(ApplicationError) as exc:
        normalise_address("email", raw)
    assert exc.value.field == "value"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 (415) 555-0100", "+14155550100"),
    ("415.555.0100", "+14155550100"),
    ("1-415-555-0100", "+14155550100"),
    ("011 44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_normalise_phone_gives_e164_with_the_default_country(raw, expected):
    assert normalise_address("sms", raw) == expected


def test_normalise_phone_uses_the_configured_default_country_and_drops_the_trunk_zero(settings):
    settings.PHONE_DEFAULT_COUNTRY_CODE = "44"
    assert normalise_address("sms", "020 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "12", "+1-800-FLOWERS", "+0123456789", "+1234567890123456"])
def test_normalise_phone_rejects_non_numbers(raw):
    with pytest.raises(ApplicationError):
        normalise_address("sms", raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("ACME.example", "acme.example"), ("@acme.example", "acme.example"), ("acme.example.", "acme.example"),
    ("bob@Acme.Example", "acme.example"), ("bücher.example", "xn--bcher-kva.example"),
])
def test_normalise_domain(raw, expected):
    assert normalise_address("email_domain", raw) == expected


@pytest.mark.parametrize("raw", ["localhost", "-acme.example", "acme..example", "acme example.com", ""])
def test_normalise_domain_rejects_non_domains(raw):
    with pytest.raises(ApplicationError):
        normalise_address("email_domain", raw)


def test_unknown_channel_is_refused_naming_the_channel_field():
    with pytest.raises(ApplicationError) as exc:
        normalise_address("fax", "123")
    assert exc.value.field == "channel"


# --------------------------------------------------------------------------- unsubscribes


def test_unsubscribe_record_is_idempotent_and_keeps_the_first_source(tenant):
    first = unsubscribe_record(tenant=tenant, channel="email", value="Dana@Acme.example", source="link_click")
    again = unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example ", source="one_click")
    assert first.pk == again.pk
    assert first.was_created is True and again.was_created is False
    row = ContactUnsubscribe.objects.get(tenant=tenant)
    assert (row.channel_value, row.source) == ("dana@acme.example", "link_click")


def test_unsubscribe_record_accepts_a_tenant_id(tenant):
    row = unsubscribe_record(tenant=tenant.pk, channel="email", value="a@acme.example", source="sendgrid_webhook")
    assert row.tenant_id == tenant.pk


def test_unsubscribe_record_refuses_an_unknown_source(tenant):
    with pytest.raises(ApplicationError) as exc:
        unsubscribe_record(tenant=tenant, channel="email", value="a@acme.example", source="carrier_pigeon")
    assert exc.value.field == "source"
    assert not ContactUnsubscribe.objects.exists()


@pytest.mark.parametrize("source", [UnsubscribeSource.REPLY, UnsubscribeSource.SENDGRID_WEBHOOK,
                                    UnsubscribeSource.MANUAL, UnsubscribeSource.IMPORT])
def test_every_source_blocks_the_address(tenant, source):
    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source=source, detail="why")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="DANA@acme.example") == "unsubscribed"


def test_sms_keyword_opt_out_blocks_the_number_whatever_its_formatting(tenant):
    unsubscribe_record(tenant=tenant, channel="sms", value="(415) 555-0100", source="sms_keyword", detail="STOP")
    assert send_block_reason(tenant_id=tenant.pk, channel="sms", value="+1 415 555 0100") == "unsubscribed"
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") is None


def test_unsubscribed_address_reimported_as_a_new_contact_is_still_blocked(tenant):
    contact = ContactFactory(tenant=tenant, email="dana@acme.example")
    unsubscribe_record(tenant=tenant, channel="email", value=contact.email, source="link_click", contact=contact)
    contact.delete()
    again = ContactFactory(tenant=tenant, email="Dana@Acme.example")

    assert send_block_reasons(tenant_id=tenant.pk, channel="email", values=[again.email]) == {
        again.email: "unsubscribed"
    }
    assert ContactUnsubscribe.objects.get(tenant=tenant).contact_id is None  # outlived the contact


def test_unsubscribe_remove_deletes_and_audits_who_when_why_and_the_old_row(tenant):
    user = UserFactory()
    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="reply", detail="stop pls")
    unsubscribe_remove(tenant=tenant, channel="email", value="DANA@acme.example", actor=user,
                       reason="asked us by phone to resume")

    assert not ContactUnsubscribe.objects.exists()
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") is None
    entry = AuditEntry.objects.get(action="unsubscribe.remove")
    assert entry.tenant == tenant and entry.actor == user and entry.created_at is not None
    assert entry.detail["reason"] == "asked us by phone to resume"
    assert entry.detail["removed"]["channel_value"] == "dana@acme.example"
    assert entry.detail["removed"]["source"] == "reply"
    assert entry.detail["removed"]["detail"] == "stop pls"


def test_unsubscribe_remove_needs_a_reason_and_an_existing_row(tenant):
    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="manual")
    with pytest.raises(ApplicationError) as exc:
        unsubscribe_remove(tenant=tenant, channel="email", value="dana@acme.example", actor=None, reason="  ")
    assert exc.value.field == "reason"
    with pytest.raises(NotFoundError):
        unsubscribe_remove(tenant=tenant, channel="email", value="other@acme.example", actor=None, reason="x")
    assert ContactUnsubscribe.objects.count() == 1
    assert not AuditEntry.objects.filter(action="unsubscribe.remove").exists()


def test_unsubscribe_remove_cannot_touch_another_tenants_opt_out(tenant, other_tenant):
    unsubscribe_record(tenant=other_tenant, channel="email", value="dana@acme.example", source="manual")
    with pytest.raises(NotFoundError):
        unsubscribe_remove(tenant=tenant, channel="email", value="dana@acme.example", actor=None, reason="x")
    assert ContactUnsubscribe.objects.filter(tenant=other_tenant).exists()


# --------------------------------------------------------------------------- suppressions


def test_soft_bounce_expires_after_the_configured_default(tenant, settings):
    settings.SUPPRESSION_SOFT_BOUNCE_HOURS = 72
    before = clock.now()
    row = suppression_add(tenant=tenant, channel="email", value="Dana@acme.example", reason="soft_bounce")
    assert row.value == "dana@acme.example"
    assert before + dt.timedelta(hours=72) <= row.expires_at <= clock.now() + dt.timedelta(hours=72)


def test_expired_soft_bounce_no_longer_blocks(tenant):
    row = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == \
        "suppressed:soft_bounce"
    CommunicationSuppression.objects.filter(pk=row.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") is None


def test_permanent_suppression_is_never_downgraded_to_an_expiring_one(tenant):
    suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="hard_bounce", detail="550")
    row = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce",
                          detail="421")
    assert (row.reason, row.expires_at, row.detail) == ("hard_bounce", None, "550")
    assert CommunicationSuppression.objects.get().reason == "hard_bounce"


def test_expiring_suppression_is_upgraded_by_a_permanent_reason(tenant):
    suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce")
    row = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="spam_report")
    assert (row.reason, row.expires_at) == ("spam_report", None)


def test_two_expiring_suppressions_keep_the_later_expiry(tenant):
    later = clock.now() + dt.timedelta(days=10)
    suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce",
                    expires_at=later)
    row = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce")
    assert row.expires_at == later


def test_expired_row_is_renewed_by_a_new_soft_bounce(tenant):
    row = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce")
    CommunicationSuppression.objects.filter(pk=row.pk).update(expires_at=clock.now() - dt.timedelta(days=30))
    renewed = suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="soft_bounce")
    assert renewed.pk == row.pk and renewed.expires_at > clock.now() + dt.timedelta(hours=71)


def test_suppression_add_refuses_bad_input_naming_the_field(tenant):
    cases = [
        ({"channel": "fax", "value": "1", "reason": "manual"}, "channel"),
        ({"channel": "email", "value": "x@y.example", "reason": "bored"}, "reason"),
        ({"channel": "email", "value": "not-an-email", "reason": "manual"}, "value"),
        ({"channel": "email", "value": "x@y.example", "reason": "manual",
          "expires_at": clock.now() - dt.timedelta(hours=1)}, "expires_at"),
        ({"channel": "email", "value": "x@y.example", "reason": "domain"}, "reason"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ApplicationError) as exc:
            suppression_add(tenant=tenant, **kwargs)
        assert exc.value.field == field, kwargs
    assert not CommunicationSuppression.objects.exists()


def test_domain_suppression_blocks_any_address_at_that_domain_but_not_others(tenant):
    compliance.domain_suppression_add(tenant=tenant, domain="@Competitor.example")
    blocked = send_block_reasons(tenant_id=tenant.pk, channel="email", values=[
        "ceo@competitor.example", "Sales@COMPETITOR.example", "x@sub.competitor.example", "x@acme.example",
    ])
    assert blocked == {"ceo@competitor.example": "suppressed:domain", "Sales@COMPETITOR.example": "suppressed:domain"}


def test_suppression_remove_lifts_the_block_with_an_audit_entry(tenant):
    compliance.domain_suppression_add(tenant=tenant, domain="competitor.example")
    compliance.suppression_remove(tenant=tenant, channel="email_domain", value="competitor.example",
                                  actor=None, actor_label="api-key:abc", reason="partnership signed")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="a@competitor.example") is None
    entry = AuditEntry.objects.get(action="suppression.remove")
    assert entry.actor_label == "api-key:abc" and entry.detail["removed"]["value"] == "competitor.example"


# --------------------------------------------------------------------------- send-time checks


def test_send_block_reasons_uses_two_queries_for_any_number_of_values(tenant, django_assert_num_queries):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="u@acme.example")
    CommunicationSuppressionFactory(tenant=tenant, value="h@acme.example", reason="hard_bounce")
    values = [f"person{i}@acme.example" for i in range(2000)] + ["u@acme.example", "h@acme.example"]
    with django_assert_num_queries(2):
        blocked = send_block_reasons(tenant_id=tenant.pk, channel="email", values=values)
    assert blocked == {"u@acme.example": "unsubscribed", "h@acme.example": "suppressed:hard_bounce"}


def test_send_block_reasons_needs_no_query_for_no_values(tenant, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert send_block_reasons(tenant_id=tenant.pk, channel="email", values=[]) == {}


def test_send_block_reasons_keys_by_the_values_passed_and_flags_invalid_addresses(tenant):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="u@acme.example")
    blocked = send_block_reasons(tenant_id=tenant.pk, channel="email",
                                 values=[" U@Acme.example", "garbage", "ok@acme.example"])
    assert blocked == {" U@Acme.example": "unsubscribed", "garbage": "invalid_address"}


def test_unsubscribe_wins_over_suppression_in_the_reason(tenant):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="dana@acme.example")
    CommunicationSuppressionFactory(tenant=tenant, value="dana@acme.example", reason="hard_bounce")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == "unsubscribed"


def test_tenant_a_opt_outs_do_not_affect_tenant_b(tenant, other_tenant):
    unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="link_click")
    suppression_add(tenant=tenant, channel="email", value="bob@acme.example", reason="hard_bounce")
    compliance.domain_suppression_add(tenant=tenant, domain="competitor.example")
    values = ["dana@acme.example", "bob@acme.example", "x@competitor.example"]
    assert send_block_reasons(tenant_id=other_tenant.pk, channel="email", values=values) == {}
    assert len(send_block_reasons(tenant_id=tenant.pk, channel="email", values=values)) == 3


def test_suppression_on_one_channel_does_not_block_another(tenant):
    suppression_add(tenant=tenant, channel="sms", value="+14155550100", reason="manual")
    assert send_block_reason(tenant_id=tenant.pk, channel="sms", value="+1 415 555 0100") == "suppressed:manual"
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") is None


# --------------------------------------------------------------------------- tokens, links and headers


def test_unsubscribe_token_round_trips_and_binds_tenant_channel_and_address(tenant):
    token = compliance.unsubscribe_token(tenant=tenant, channel="email", value="Dana@acme.example")
    target = compliance.unsubscribe_token_read(token)
    assert target == compliance.UnsubscribeTarget(tenant_id=tenant.pk, channel="email", value="dana@acme.example")


def test_a_token_signed_for_another_purpose_or_altered_is_refused(tenant):
    token = compliance.unsubscribe_token(tenant=tenant, channel="email", value="dana@acme.example")
    foreign = signing.dumps([tenant.pk, "email", "dana@acme.example"], salt="something.else", compress=True)
    payload, sig = token.rsplit(":", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B") + ":" + sig
    for bad in (foreign, flipped, token[:-2], "", "not-a-token", token + "x"):
        with pytest.raises(signing.BadSignature):
            compliance.unsubscribe_token_read(bad)


def test_unsubscribe_url_uses_the_public_base_url(tenant, settings):
    settings.PUBLIC_BASE_URL = "https://out.example.com"
    url = compliance.unsubscribe_url(tenant=tenant, channel="email", value="dana@acme.example")
    assert url.startswith("https://out.example.com/unsubscribe?token=")
    assert str(tenant.pk) not in url.split("token=")[0]


def test_list_unsubscribe_headers_follow_rfc_8058(tenant, settings):
    settings.PUBLIC_BASE_URL = "https://out.example.com"
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "reply.out.example.com"
    headers = compliance.list_unsubscribe_headers(tenant=tenant, channel="email", value="dana@acme.example")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_part, mailto_part = headers["List-Unsubscribe"].split(", ")
    assert https_part == f"<{compliance.unsubscribe_url(tenant=tenant, channel='email', value='dana@acme.example')}>"
    assert mailto_part.startswith("<mailto:unsubscribe+") and mailto_part.endswith(">")
    address = mailto_part[len("<mailto:"):].split("?")[0]
    local, domain = address.split("@")
    assert domain == "reply.out.example.com"
    assert len(local) <= 64 and local == local.lower()  # RFC 5321 limit; survives case-folding MTAs


def test_mailto_unsubscribe_is_recognised_from_the_sender_or_the_subject(tenant, settings):
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "reply.out.example.com"
    local = compliance.unsubscribe_mailto_local_part(tenant=tenant, channel="email", value="dana@acme.example")
    to = [f"{local.upper()}@reply.out.example.com"]
    expected = compliance.UnsubscribeTarget(tenant_id=tenant.pk, channel="email", value="dana@acme.example")

    assert compliance.unsubscribe_target_from_mail(to_addresses=to, from_address="Dana@acme.example") == expected
    # Someone else writing to the same address cannot unsubscribe Dana, nor themselves.
    assert compliance.unsubscribe_target_from_mail(to_addresses=to, from_address="eve@evil.example") is None
    # From an alias, the signed token in the subject (put there by the mailto URL) still works.
    token = compliance.unsubscribe_token(tenant=tenant, channel="email", value="dana@acme.example")
    assert compliance.unsubscribe_target_from_mail(to_addresses=["x@y.example"], from_address="alias@home.example",
                                                   subject=f"Re: unsubscribe {token}") == expected
    assert compliance.unsubscribe_target_from_mail(to_addresses=["sales@reply.out.example.com"],
                                                   from_address="dana@acme.example", subject="hello") is None


# --------------------------------------------------------------------------- CSV import


def test_csv_import_with_header_imports_addresses_and_domains_and_reports_bad_rows(tenant):
    data = (
        b"email,domain,detail\n"
        b"Dana@acme.example,,asked at a trade show\n"
        b",competitor.example,competitor\n"
        b"not-an-email,,\n"
        b"dana@acme.example,,duplicate\n"
    )
    report = compliance.suppressions_import_csv(tenant=tenant, file=data, actor=None, actor_label="test")
    assert (report.rows, report.suppressed_addresses, report.suppressed_domains) == (4, 1, 1)
    assert [(e.line, e.value) for e in report.errors] == [(4, "not-an-email")]
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == "suppressed:manual"
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="x@competitor.example") == \
        "suppressed:domain"
    assert AuditEntry.objects.get(action="suppression.import").detail["errors"] == 1


def test_csv_import_of_bare_lines_infers_the_channel(tenant):
    data = "\ufeffdana@acme.example\ncompetitor.example\n+1 415 555 0100\n\n".encode()
    report = compliance.suppressions_import_csv(tenant=tenant, file=data)
    assert report.errors == [] and report.imported == 3
    assert set(CommunicationSuppression.objects.values_list("channel", "value")) == {
        ("email", "dana@acme.example"), ("email_domain", "competitor.example"), ("sms", "+14155550100"),
    }


def test_csv_import_keeps_an_existing_hard_bounce(tenant):
    suppression_add(tenant=tenant, channel="email", value="dana@acme.example", reason="hard_bounce")
    compliance.suppressions_import_csv(tenant=tenant, file=b"value\ndana@acme.example\n")
    assert CommunicationSuppression.objects.get().reason == SuppressionReason.HARD_BOUNCE


def test_csv_import_refuses_a_non_utf8_file(tenant):
    with pytest.raises(ApplicationError) as exc:
        compliance.suppressions_import_csv(tenant=tenant, file="dana@acme.example\n".encode("utf-16"))
    assert exc.value.field == "file"
    assert not CommunicationSuppression.objects.exists()


def test_csv_import_of_5000_rows_runs_in_a_handful_of_statements(tenant):
    data = "email\n" + "".join(f"p{i}@acme.example\n" for i in range(5000))
    with CaptureQueriesContext(connection) as ctx:
        report = compliance.suppressions_import_csv(tenant=tenant, file=data.encode())
    assert report.suppressed_addresses == 5000
    assert len(ctx.captured_queries) <= 10  # 5 upsert batches + audit + savepoints
    assert CommunicationSuppression.objects.filter(tenant=tenant).count() == 5000
