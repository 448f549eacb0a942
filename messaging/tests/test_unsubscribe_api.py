"""REST API: /api/v1/unsubscribes*, /api/v1/suppressions* (roles, tenant isolation, query counts)."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from messaging import compliance
from messaging.compliance import send_block_reason
from messaging.models import CommunicationSuppression, ContactUnsubscribe
from messaging.tests.factories import CommunicationSuppressionFactory, ContactUnsubscribeFactory
from outreach import clock
from outreach.tenancy.models import AuditEntry, Role
from outreach.tenancy.tests.api_clients import api_client, error_fields
from outreach.tenancy.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ADDRESS = "dana@acme.example"


@pytest.fixture
def owner(tenant) -> APIClient:
    return api_client(tenant=tenant, role=Role.OWNER)


@pytest.fixture
def admin(tenant) -> APIClient:
    return api_client(tenant=tenant, role=Role.ADMIN)


@pytest.fixture
def member(tenant) -> APIClient:
    return api_client(tenant=tenant, role=Role.MEMBER)


@pytest.fixture
def viewer(tenant) -> APIClient:
    return api_client(tenant=tenant, role=Role.VIEWER)


@pytest.fixture
def stranger(other_tenant) -> APIClient:
    """An owner key of another tenant."""
    return api_client(tenant=other_tenant, role=Role.OWNER)


def _q(**params) -> str:
    return "?" + urlencode(params)


# --------------------------------------------------------------------------- POST /unsubscribes


def test_member_unsubscribes_an_address_manually(tenant, member):
    response = member.post("/api/v1/unsubscribes", {"channel": "email", "value": " Dana@Acme.example",
                                                    "reason": "asked on a call"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["value"] == ADDRESS and response.json()["source"] == "manual"
    row = ContactUnsubscribe.objects.get(tenant=tenant)
    assert (row.channel_value, row.source, row.detail) == (ADDRESS, "manual", "asked on a call")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value=ADDRESS) == "unsubscribed"


def test_repeating_a_manual_unsubscribe_answers_200_and_changes_nothing(tenant, owner):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS, source="link_click")
    response = owner.post("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS}, format="json")
    assert response.status_code == 200 and response.json()["source"] == "link_click"
    assert ContactUnsubscribe.objects.count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"channel": "email", "value": "not-an-email"}, "value"),
    ({"channel": "fax", "value": ADDRESS}, "channel"),
    ({"value": ADDRESS}, "channel"),
    ({"channel": "sms", "value": "call me"}, "value"),
])
def test_bad_manual_unsubscribe_is_a_400_naming_the_field(owner, body, field):
    response = owner.post("/api/v1/unsubscribes", body, format="json")
    assert response.status_code == 400 and field in error_fields(response)
    assert not ContactUnsubscribe.objects.exists()


def test_viewer_cannot_unsubscribe(viewer):
    response = viewer.post("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS}, format="json")
    assert response.status_code == 403
    assert not ContactUnsubscribe.objects.exists()


def test_no_key_is_401_on_every_endpoint(tenant):
    client = APIClient()
    for method, path in [("get", "/api/v1/unsubscribes"), ("post", "/api/v1/unsubscribes"),
                         ("delete", "/api/v1/unsubscribes"), ("get", "/api/v1/unsubscribes/status"),
                         ("get", "/api/v1/unsubscribes/stats"), ("get", "/api/v1/unsubscribes/link"),
                         ("get", "/api/v1/suppressions"), ("post", "/api/v1/suppressions"),
                         ("delete", "/api/v1/suppressions"), ("get", "/api/v1/suppressions/domains"),
                         ("post", "/api/v1/suppressions/domains"), ("delete", "/api/v1/suppressions/domains")]:
        assert getattr(client, method)(path).status_code == 401, (method, path)


def test_a_session_user_acts_for_their_tenant(tenant, client):
    membership = MembershipFactory(tenant=tenant, role=Role.MEMBER)
    api = APIClient()
    api.force_login(membership.user)
    response = api.post("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS}, format="json")
    assert response.status_code == 201
    assert ContactUnsubscribe.objects.filter(tenant=tenant).exists()


# --------------------------------------------------------------------------- DELETE /unsubscribes


def test_only_an_admin_resubscribes_and_it_is_audited(tenant, admin, member):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS, source="reply")
    body = {"channel": "email", "value": ADDRESS, "reason": "signed a new contract"}
    assert member.delete("/api/v1/unsubscribes", body, format="json").status_code == 403
    assert ContactUnsubscribe.objects.exists()
    response = admin.delete("/api/v1/unsubscribes", body, format="json")
    assert response.status_code == 204, response.content
    assert not ContactUnsubscribe.objects.exists()
    entry = AuditEntry.objects.get(action="unsubscribe.remove")
    assert entry.tenant == tenant and entry.actor_label.startswith("api-key:")
    assert entry.detail["reason"] == "signed a new contract" and entry.detail["removed"]["source"] == "reply"


def test_resubscribe_accepts_query_parameters(tenant, owner):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS)
    response = owner.delete("/api/v1/unsubscribes" + _q(channel="email", value=ADDRESS, reason="by phone"))
    assert response.status_code == 204
    assert not ContactUnsubscribe.objects.exists()


def test_resubscribe_without_reason_is_400_naming_reason(tenant, owner):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS)
    response = owner.delete("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS}, format="json")
    assert response.status_code == 400 and "reason" in error_fields(response)
    assert ContactUnsubscribe.objects.exists()


def test_viewer_cannot_resubscribe(tenant, viewer):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS)
    response = viewer.delete("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS, "reason": "x"},
                             format="json")
    assert response.status_code == 403
    assert ContactUnsubscribe.objects.exists()


def test_another_tenant_cannot_resubscribe_our_address(tenant, stranger):
    ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS)
    response = stranger.delete("/api/v1/unsubscribes", {"channel": "email", "value": ADDRESS, "reason": "x"},
                               format="json")
    assert response.status_code == 404
    assert ContactUnsubscribe.objects.filter(tenant=tenant).exists()


# --------------------------------------------------------------------------- GET /unsubscribes


def test_list_is_tenant_scoped_filtered_and_newest_first(tenant, other_tenant, viewer, stranger):
    old = ContactUnsubscribeFactory(tenant=tenant, channel_value="old@acme.example", source="link_click")
    ContactUnsubscribe.objects.filter(pk=old.pk).update(created_at=clock.now() - dt.timedelta(days=2))
    ContactUnsubscribeFactory(tenant=tenant, channel_value="new@acme.example", source="one_click")
    ContactUnsubscribeFactory(tenant=tenant, channel="sms", channel_value="+14155550100", source="sms_keyword")
    ContactUnsubscribeFactory(tenant=other_tenant, channel_value="theirs@acme.example")

    values = [r["value"] for r in viewer.get("/api/v1/unsubscribes").json()["results"]]
    assert values == ["+14155550100", "new@acme.example", "old@acme.example"]
    assert [r["value"] for r in viewer.get("/api/v1/unsubscribes?channel=email").json()["results"]] == [
        "new@acme.example", "old@acme.example"]
    assert [r["value"] for r in viewer.get("/api/v1/unsubscribes?source=one_click").json()["results"]] == [
        "new@acme.example"]
    assert [r["value"] for r in stranger.get("/api/v1/unsubscribes").json()["results"]] == ["theirs@acme.example"]
    assert viewer.get("/api/v1/unsubscribes?source=telepathy").status_code == 400


def test_list_query_count_does_not_grow_with_rows(tenant, viewer, django_assert_num_queries):
    ContactUnsubscribeFactory.create_batch(30, tenant=tenant)
    with django_assert_num_queries(2):  # API key lookup, one page
        response = viewer.get("/api/v1/unsubscribes?page_size=25")
    assert response.status_code == 200 and len(response.json()["results"]) == 25
    next_url = response.json()["next"]
    with django_assert_num_queries(2):
        page_two = viewer.get(next_url)
    assert len(page_two.json()["results"]) == 5


# --------------------------------------------------------------------------- GET /unsubscribes/status


def test_status_says_unsubscribed_why_and_since_when(tenant, viewer):
    row = ContactUnsubscribeFactory(tenant=tenant, channel_value=ADDRESS, source="reply", detail="stop emailing")
    body = viewer.get("/api/v1/unsubscribes/status" + _q(channel="email", value="DANA@acme.example")).json()
    assert body["value"] == ADDRESS and body["blocked"] is True and body["blocked_reason"] == "unsubscribed"
    assert body["unsubscribed"]["reason"] == "reply" and body["unsubscribed"]["detail"] == "stop emailing"
    assert dt.datetime.fromisoformat(body["unsubscribed"]["since"]) == row.created_at
    assert body["suppressed"] is None and body["domain_suppressed"] is None


def test_status_reports_suppressions_and_domain_blocks_and_ignores_expired_ones(tenant, viewer):
    CommunicationSuppressionFactory(tenant=tenant, value=ADDRESS, reason="soft_bounce",
                                    expires_at=clock.now() - dt.timedelta(hours=1))
    compliance.domain_suppression_add(tenant=tenant, domain="acme.example", detail="existing customer")
    body = viewer.get("/api/v1/unsubscribes/status" + _q(channel="email", value=ADDRESS)).json()
    assert body["blocked_reason"] == "suppressed:domain" and body["suppressed"] is None
    assert body["domain_suppressed"]["detail"] == "existing customer"


def test_status_of_a_free_address_and_of_another_tenants_block(tenant, other_tenant, viewer):
    ContactUnsubscribeFactory(tenant=other_tenant, channel_value=ADDRESS)
    body = viewer.get("/api/v1/unsubscribes/status" + _q(channel="email", value=ADDRESS)).json()
    assert body["blocked"] is False and body["unsubscribed"] is None


def test_status_needs_a_valid_address(viewer):
    response = viewer.get("/api/v1/unsubscribes/status" + _q(channel="email", value="nope"))
    assert response.status_code == 400 and "value" in error_fields(response)


# --------------------------------------------------------------------------- GET /unsubscribes/stats


def test_stats_count_by_source_channel_and_day_for_the_tenant_only(tenant, other_tenant, viewer, stranger):
    now = clock.now()
    for value, source, channel, days_ago in [
        ("a@acme.example", "link_click", "email", 0), ("b@acme.example", "link_click", "email", 0),
        ("c@acme.example", "one_click", "email", 1), ("+14155550100", "sms_keyword", "sms", 1),
        ("d@acme.example", "manual", "email", 40),
    ]:
        row = ContactUnsubscribeFactory(tenant=tenant, channel=channel, channel_value=value, source=source)
        ContactUnsubscribe.objects.filter(pk=row.pk).update(created_at=now - dt.timedelta(days=days_ago))
    ContactUnsubscribeFactory(tenant=other_tenant)

    body = viewer.get("/api/v1/unsubscribes/stats").json()
    assert body["total"] == 5
    assert body["by_source"] == {"link_click": 2, "one_click": 1, "sms_keyword": 1, "manual": 1}
    assert body["by_channel"] == {"email": 4, "sms": 1}
    days = {d["day"]: d for d in body["by_day"]}
    assert days[now.date().isoformat()]["count"] == 2
    assert days[(now - dt.timedelta(days=1)).date().isoformat()]["by_source"] == {"one_click": 1, "sms_keyword": 1}
    assert len(days) == 2  # the 40-day-old one is outside the default 30 days
    assert stranger.get("/api/v1/unsubscribes/stats").json()["total"] == 1
    assert viewer.get("/api/v1/unsubscribes/stats?days=0").status_code == 400


# --------------------------------------------------------------------------- GET /unsubscribes/link


def test_admin_gets_a_working_signed_link_and_headers(tenant, settings):
    settings.PUBLIC_BASE_URL = "https://out.example.com"
    admin = api_client(tenant=tenant, role=Role.ADMIN)
    body = admin.get("/api/v1/unsubscribes/link" + _q(channel="email", value="Dana@acme.example")).json()
    assert body["url"].startswith("https://out.example.com/unsubscribe?token=")
    assert body["headers"]["List-Unsubscribe"].startswith(f"<{body['url']}>, <mailto:")
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = body["url"][len("https://out.example.com"):]
    assert APIClient().get(path).status_code == 200  # the confirmation page; its button POSTs
    assert APIClient().post(path, {"confirm": "yes"}, format="multipart").status_code == 200
    assert ContactUnsubscribe.objects.get(tenant=tenant).channel_value == ADDRESS


def test_member_cannot_mint_links(member):
    assert member.get("/api/v1/unsubscribes/link" + _q(channel="email", value=ADDRESS)).status_code == 403


def test_a_link_minted_by_another_tenant_unsubscribes_only_in_that_tenant(tenant, other_tenant, stranger):
    body = stranger.get("/api/v1/unsubscribes/link" + _q(channel="email", value=ADDRESS)).json()
    APIClient().post(body["url"].split("127.0.0.1:8000", 1)[-1], {"confirm": "yes"}, format="multipart")
    assert not ContactUnsubscribe.objects.filter(tenant=tenant).exists()
    assert ContactUnsubscribe.objects.filter(tenant=other_tenant).exists()


# --------------------------------------------------------------------------- /suppressions


def test_member_adds_a_suppression_and_viewer_cannot(tenant, member, viewer):
    assert viewer.post("/api/v1/suppressions", {"channel": "email", "value": ADDRESS}, format="json"
                       ).status_code == 403
    response = member.post("/api/v1/suppressions", {"channel": "email", "value": ADDRESS, "detail": "legal"},
                           format="json")
    assert response.status_code == 201, response.content
    assert response.json()["reason"] == "manual" and response.json()["active"] is True
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value=ADDRESS) == "suppressed:manual"


@pytest.mark.parametrize(("body", "field"), [
    ({"channel": "email", "value": "x"}, "value"),
    ({"channel": "email", "value": ADDRESS, "reason": "domain"}, "reason"),
    ({"channel": "email_domain", "value": "acme.example"}, "channel"),
])
def test_bad_suppression_is_a_400_naming_the_field(owner, body, field):
    response = owner.post("/api/v1/suppressions", body, format="json")
    assert response.status_code == 400 and field in error_fields(response), response.content


def test_suppression_with_past_expiry_is_refused(owner):
    past = (clock.now() - dt.timedelta(hours=1)).isoformat()
    response = owner.post("/api/v1/suppressions", {"channel": "email", "value": ADDRESS, "reason": "soft_bounce",
                                                   "expires_at": past}, format="json")
    assert response.status_code == 400 and "expires_at" in error_fields(response)


def test_suppression_list_is_scoped_filterable_and_excludes_domains(tenant, other_tenant, viewer, stranger,
                                                                    django_assert_num_queries):
    CommunicationSuppressionFactory(tenant=tenant, value="hard@acme.example", reason="hard_bounce")
    CommunicationSuppressionFactory(tenant=tenant, value="soft@acme.example", reason="soft_bounce",
                                    expires_at=clock.now() - dt.timedelta(hours=1))
    CommunicationSuppressionFactory(tenant=tenant, channel="email_domain", value="competitor.example",
                                    reason="domain")
    CommunicationSuppressionFactory(tenant=other_tenant, value="theirs@acme.example")
    with django_assert_num_queries(2):
        body = viewer.get("/api/v1/suppressions").json()
    assert {r["value"]: r["active"] for r in body["results"]} == {"hard@acme.example": True,
                                                                  "soft@acme.example": False}
    assert [r["value"] for r in viewer.get("/api/v1/suppressions?active=true").json()["results"]] == [
        "hard@acme.example"]
    assert [r["value"] for r in viewer.get("/api/v1/suppressions?reason=soft_bounce").json()["results"]] == [
        "soft@acme.example"]
    assert [r["value"] for r in stranger.get("/api/v1/suppressions").json()["results"]] == ["theirs@acme.example"]


def test_lifting_a_suppression_is_admin_only_audited_and_scoped(tenant, admin, member, stranger):
    CommunicationSuppressionFactory(tenant=tenant, value=ADDRESS, reason="manual")
    params = {"channel": "email", "value": ADDRESS, "reason": "mistake"}
    assert stranger.delete("/api/v1/suppressions", params, format="json").status_code == 404
    assert member.delete("/api/v1/suppressions", params, format="json").status_code == 403
    assert admin.delete("/api/v1/suppressions", params, format="json").status_code == 204
    assert not CommunicationSuppression.objects.exists()
    assert AuditEntry.objects.get(action="suppression.remove").detail["reason"] == "mistake"


# --------------------------------------------------------------------------- /suppressions/domains


def test_domain_do_not_contact_list_round_trip(tenant, admin, member, viewer, stranger, django_assert_num_queries):
    assert viewer.post("/api/v1/suppressions/domains", {"domain": "competitor.example"}, format="json"
                       ).status_code == 403
    response = member.post("/api/v1/suppressions/domains", {"domain": "@Competitor.example", "detail": "rival"},
                           format="json")
    assert response.status_code == 201 and response.json()["domain"] == "competitor.example"
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="ceo@competitor.example") == \
        "suppressed:domain"

    with django_assert_num_queries(2):
        listed = viewer.get("/api/v1/suppressions/domains").json()["results"]
    assert [d["domain"] for d in listed] == ["competitor.example"]
    assert stranger.get("/api/v1/suppressions/domains").json()["results"] == []
    assert stranger.delete("/api/v1/suppressions/domains" + _q(domain="competitor.example", reason="x")
                           ).status_code == 404

    lift = "/api/v1/suppressions/domains" + _q(domain="competitor.example", reason="merger")
    assert member.delete(lift).status_code == 403
    assert admin.delete(lift).status_code == 204
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="ceo@competitor.example") is None


def test_bad_domain_is_a_400_naming_domain(owner):
    response = owner.post("/api/v1/suppressions/domains", {"domain": "not a domain"}, format="json")
    assert response.status_code == 400 and "domain" in error_fields(response)
