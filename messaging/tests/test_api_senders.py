"""Sender identities over the API, against the SendGrid simulator over real HTTP."""
from __future__ import annotations

import pytest

from messaging.models import EmailSenderIdentity
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields
from simulators.sendgrid.testing import free_port, running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=3) as handle:
        yield handle




ENDPOINTS = [
    Endpoint("GET", "sender-identities", Role.VIEWER, detail=False),
    Endpoint("POST", "sender-identities", Role.ADMIN, body={"from_email": "new@seller.example", "from_name": "Sam"},
             ok=(201,), detail=False),
    Endpoint("GET", "sender-identities/{sender}", Role.VIEWER),
    Endpoint("POST", "sender-identities/{sender}/pause", Role.ADMIN),
    Endpoint("POST", "sender-identities/{sender}/resume", Role.ADMIN),
    Endpoint("POST", "sender-identities/{sender}/sync", Role.ADMIN),
]
IDS = [str(e) for e in ENDPOINTS]


@pytest.fixture
def ids(tenant, sim):
    # The simulator runs for every access test: a sender's create and sync call SendGrid.
    return {"sender": EmailSenderIdentityFactory(tenant=tenant).pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


def test_create_registers_the_sender_with_sendgrid(tenant, sim):
    client = api_client(tenant=tenant, role=Role.ADMIN)
    response = client.post("/api/v1/sender-identities", {"from_email": "Rep@Seller.example", "from_name": "Sam"},
                           format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["from_email"], body["reply_to"], body["status"]) == ("rep@seller.example", "rep@seller.example",
                                                                      "verified")
    assert body["provider_sender_id"]


def test_a_second_sender_with_the_same_address_is_a_409(tenant, sim):
    EmailSenderIdentityFactory(tenant=tenant, from_email="rep@seller.example")
    response = api_client(tenant=tenant, role=Role.ADMIN).post(
        "/api/v1/sender-identities", {"from_email": "rep@seller.example"}, format="json")
    assert response.status_code == 409
    assert "from_email" in error_fields(response)


@pytest.mark.parametrize("payload, field", [
    ({}, "from_email"),
    ({"from_email": "not-an-address"}, "from_email"),
    ({"from_email": "a@seller.example", "reply_to": "nope"}, "reply_to"),
    ({"from_email": "a@seller.example", "nickname": "n" * 101}, "nickname"),
])
def test_invalid_input_is_a_400_naming_the_field(tenant, payload, field):
    response = api_client(tenant=tenant, role=Role.ADMIN).post("/api/v1/sender-identities", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


def test_pause_and_resume(tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    client = api_client(tenant=tenant, role=Role.ADMIN)
    assert client.post(f"/api/v1/sender-identities/{sender.pk}/pause").json()["is_paused"] is True
    assert EmailSenderIdentity.objects.get(pk=sender.pk).is_paused is True
    assert client.post(f"/api/v1/sender-identities/{sender.pk}/resume").json()["is_paused"] is False


def test_sync_registers_a_sender_sendgrid_did_not_know(tenant, sim):
    sender = EmailSenderIdentityFactory(tenant=tenant, status="pending", provider_sender_id="")
    body = api_client(tenant=tenant, role=Role.ADMIN).post(f"/api/v1/sender-identities/{sender.pk}/sync").json()
    assert body["status"] == "verified" and body["provider_sender_id"] and body["last_synced_at"]


def test_sync_with_sendgrid_unreachable_is_a_503(tenant, settings):
    settings.SENDGRID_API_HOST = f"http://127.0.0.1:{free_port()}"
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 1.0
    sender = EmailSenderIdentityFactory(tenant=tenant)
    response = api_client(tenant=tenant, role=Role.ADMIN).post(f"/api/v1/sender-identities/{sender.pk}/sync")
    assert response.status_code == 503


@pytest.mark.parametrize("n", [2, 7])
def test_list_query_count_does_not_grow_with_rows(tenant, n, django_assert_num_queries):
    EmailSenderIdentityFactory.create_batch(n, tenant=tenant)
    client = api_client(tenant=tenant, role=Role.VIEWER)
    with django_assert_num_queries(2):  # API key, page
        response = client.get("/api/v1/sender-identities")
    assert len(response.json()["results"]) == n
