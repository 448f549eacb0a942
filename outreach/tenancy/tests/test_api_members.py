"""Members over the API (owners manage them) and session authentication for staff."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from contacts.tests.factories import ContactFactory
from outreach.tenancy.models import AuditEntry, Role, TenantMembership
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client
from outreach.tenancy.tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    Endpoint("GET", "members", Role.ADMIN, detail=False),
    Endpoint("POST", "members", Role.OWNER, body={"user": "newcomer", "role": "member"}, ok=(201,), detail=False),
    Endpoint("GET", "members/{membership}", Role.ADMIN),
    Endpoint("PATCH", "members/{membership}", Role.OWNER, body={"role": "admin"}),
    Endpoint("DELETE", "members/{membership}", Role.OWNER, ok=(204,)),
]
IDS = [str(e) for e in ENDPOINTS]


@pytest.fixture
def ids(tenant):
    UserFactory(username="newcomer")
    MembershipFactory(tenant=tenant, role=Role.OWNER)
    return {"membership": MembershipFactory(tenant=tenant, role=Role.MEMBER).pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


def test_add_a_member_by_email_and_change_their_role(tenant):
    UserFactory(username="dana", email="Dana@Seller.example")
    owner = api_client(tenant=tenant, role=Role.OWNER)
    body = owner.post("/api/v1/members", {"user": "dana@seller.example", "role": "viewer"}, format="json").json()
    assert (body["username"], body["role"]) == ("dana", "viewer")
    assert owner.patch(f"/api/v1/members/{body['id']}", {"role": "admin"}, format="json").json()["role"] == "admin"
    assert owner.post("/api/v1/members", {"user": "dana", "role": "viewer"}, format="json").status_code == 409
    actions = AuditEntry.objects.filter(tenant=tenant, action__startswith="membership.")
    assert set(actions.values_list("action", flat=True)) == {"membership.add", "membership.role"}


@pytest.mark.parametrize("payload, field", [
    ({"user": "nobody", "role": "member"}, "user"),
    ({"role": "member"}, "user"),
    ({"user": "dana", "role": "emperor"}, "role"),
])
def test_invalid_input_is_a_400_naming_the_field(tenant, payload, field):
    UserFactory(username="dana")
    response = api_client(tenant=tenant, role=Role.OWNER).post("/api/v1/members", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body or body.get("field") == field


def test_the_last_owner_cannot_be_demoted_or_removed(tenant):
    only_owner = MembershipFactory(tenant=tenant, role=Role.OWNER)
    owner = api_client(tenant=tenant, role=Role.OWNER)
    assert owner.patch(f"/api/v1/members/{only_owner.pk}", {"role": "admin"}, format="json").status_code == 409
    assert owner.delete(f"/api/v1/members/{only_owner.pk}").status_code == 409
    second = MembershipFactory(tenant=tenant, role=Role.OWNER)
    assert owner.delete(f"/api/v1/members/{only_owner.pk}").status_code == 204
    assert list(TenantMembership.objects.filter(tenant=tenant).values_list("pk", flat=True)) == [second.pk]


@pytest.mark.parametrize("n", [2, 9])
def test_list_query_count_does_not_grow_with_rows(tenant, n, django_assert_num_queries):
    MembershipFactory.create_batch(n, tenant=tenant)
    client = api_client(tenant=tenant, role=Role.ADMIN)
    with django_assert_num_queries(2):  # API key, page with users joined
        response = client.get("/api/v1/members")
    assert len(response.json()["results"]) == n


# --- session auth for staff --------------------------------------------------------------------------------------

def test_a_member_signed_in_with_a_session_acts_for_their_tenant(tenant, other_tenant):
    membership = MembershipFactory(tenant=tenant, role=Role.VIEWER)
    mine = ContactFactory(tenant=tenant)
    ContactFactory(tenant=other_tenant)
    client = APIClient()
    client.force_login(membership.user)
    assert [r["id"] for r in client.get("/api/v1/contacts").json()["results"]] == [mine.pk]
    assert client.post("/api/v1/contacts", {"email": "a@b.example"}, format="json").status_code == 403


def test_a_session_user_in_two_tenants_names_one_in_x_tenant(tenant, other_tenant):
    membership = MembershipFactory(tenant=tenant, role=Role.MEMBER)
    MembershipFactory(tenant=other_tenant, user=membership.user, role=Role.VIEWER)
    theirs = ContactFactory(tenant=other_tenant)
    client = APIClient()
    client.force_login(membership.user)
    response = client.get("/api/v1/contacts")
    assert response.status_code == 400 and "X-Tenant" in response.json()
    response = client.get("/api/v1/contacts", HTTP_X_TENANT=other_tenant.slug)
    assert [r["id"] for r in response.json()["results"]] == [theirs.pk]


def test_a_signed_in_user_without_membership_is_refused(tenant):
    client = APIClient()
    client.force_login(UserFactory())
    assert client.get("/api/v1/contacts").status_code == 403
