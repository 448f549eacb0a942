"""The public /unsubscribe endpoint: link GET and RFC 8058 one-click POST, as mail clients call them."""
from __future__ import annotations

import pytest
from django.test import Client

from messaging import compliance
from messaging.compliance import send_block_reason
from messaging.models import ContactUnsubscribe

pytestmark = pytest.mark.django_db

ADDRESS = "dana@acme.example"


@pytest.fixture
def mail_client() -> Client:
    """A client with CSRF checks on, no session and no cookies: how a mail provider's server POSTs."""
    return Client(enforce_csrf_checks=True)


def _path(tenant, value: str = ADDRESS, channel: str = "email") -> str:
    url = compliance.unsubscribe_url(tenant=tenant, channel=channel, value=value)
    return url[url.index("/unsubscribe"):]


def _confirm(mail_client, path: str, **extra):
    """The confirmation page's button: a form POST of `confirm=yes` to the same URL."""
    return mail_client.post(path, data="confirm=yes", content_type="application/x-www-form-urlencoded", **extra)


def test_a_get_of_the_link_shows_a_confirmation_page_with_a_button_and_records_nothing(tenant, mail_client):
    """Link scanners of mail gateways GET every link of a mail (RFC 8058 section 1): a GET is nobody's act."""
    response = mail_client.get(_path(tenant), HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda link scan)")
    assert response.status_code == 200
    assert b'<form method="post"' in response.content and b'name="confirm" value="yes"' in response.content
    assert ADDRESS.encode() in response.content
    assert not ContactUnsubscribe.objects.exists()
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value=ADDRESS) is None
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_the_confirmation_button_records_the_opt_out_and_shows_the_done_page(tenant, mail_client):
    response = _confirm(mail_client, _path(tenant), HTTP_USER_AGENT="Mozilla/5.0 test")
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content and ADDRESS.encode() in response.content
    row = ContactUnsubscribe.objects.get(tenant=tenant)
    assert (row.channel, row.channel_value, row.source) == ("email", ADDRESS, "link_click")
    assert "confirmed on the unsubscribe page" in row.detail and "Mozilla/5.0 test" in row.detail
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value=ADDRESS) == "unsubscribed"
    assert not response.cookies


def test_confirming_twice_is_idempotent(tenant, mail_client):
    first = _confirm(mail_client, _path(tenant))
    second = _confirm(mail_client, _path(tenant))
    assert first.status_code == second.status_code == 200
    assert ContactUnsubscribe.objects.filter(tenant=tenant).count() == 1


def test_confirming_redirects_to_the_tenants_page_when_configured(tenant, mail_client):
    tenant.unsubscribe_redirect_url = "https://seller.example/bye"
    tenant.save()
    assert mail_client.get(_path(tenant)).status_code == 200  # the confirmation page first
    response = _confirm(mail_client, _path(tenant))
    assert response.status_code == 302 and response["Location"] == "https://seller.example/bye"
    assert ContactUnsubscribe.objects.filter(tenant=tenant, channel_value=ADDRESS).exists()


def test_one_click_post_as_a_mail_client_sends_it_records_without_session_csrf_or_cookies(tenant, mail_client):
    response = mail_client.post(_path(tenant), data="List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert not response.cookies
    assert b"<html" not in response.content.lower()  # no confirmation page
    row = ContactUnsubscribe.objects.get(tenant=tenant)
    assert (row.channel_value, row.source) == (ADDRESS, "one_click")


def test_one_click_post_after_a_link_click_keeps_the_first_record(tenant, mail_client):
    _confirm(mail_client, _path(tenant))
    response = mail_client.post(_path(tenant), data="List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert list(ContactUnsubscribe.objects.values_list("source", flat=True)) == ["link_click"]


def test_sms_link_unsubscribes_the_e164_number(tenant, mail_client):
    response = _confirm(mail_client, _path(tenant, value="(415) 555-0100", channel="sms"))
    assert response.status_code == 200
    assert ContactUnsubscribe.objects.get().channel_value == "+14155550100"


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-3],  # truncated
    lambda p: p.replace("token=", "token=x"),  # altered payload
    lambda p: p.split("?")[0],  # missing
    lambda p: p.split("?")[0] + "?token=",  # empty
    lambda p: p.split("?")[0] + "?token=%00%ff:garbage",  # malformed
])
def test_tampered_malformed_or_missing_token_gets_a_400_page_and_records_nothing(tenant, mail_client, mangle):
    path = mangle(_path(tenant))
    get = mail_client.get(path)
    assert get.status_code == 400 and b"not valid" in get.content
    post = mail_client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert post.status_code == 400
    assert not ContactUnsubscribe.objects.exists()


def test_token_swapped_to_another_address_is_refused(tenant, mail_client):
    """Re-signing is impossible without the key, and a real token cannot be pointed at someone else."""
    good = compliance.unsubscribe_token(tenant=tenant, channel="email", value=ADDRESS)
    other = compliance.unsubscribe_token(tenant=tenant, channel="email", value="eve@acme.example")
    spliced = good.rsplit(":", 1)[0] + ":" + other.rsplit(":", 1)[1]
    assert mail_client.get(f"/unsubscribe?token={spliced}").status_code == 400
    assert not ContactUnsubscribe.objects.exists()


def test_token_of_a_deleted_tenant_is_refused(tenant, mail_client):
    path = _path(tenant)
    tenant.delete()
    assert mail_client.get(path).status_code == 400
    assert not ContactUnsubscribe.objects.exists()


def test_head_request_from_a_link_checker_records_nothing(tenant, mail_client):
    assert mail_client.head(_path(tenant)).status_code == 200
    assert not ContactUnsubscribe.objects.exists()


def test_other_methods_are_not_allowed(tenant, mail_client):
    assert mail_client.put(_path(tenant)).status_code == 405
    assert not ContactUnsubscribe.objects.exists()


def test_unsubscribing_in_tenant_a_leaves_tenant_b_free_to_mail_the_address(tenant, other_tenant, mail_client):
    _confirm(mail_client, _path(tenant))
    assert send_block_reason(tenant_id=other_tenant.pk, channel="email", value=ADDRESS) is None
