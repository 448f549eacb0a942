"""Members over the API (owners manage them) and session authentication for staff."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from contacts.tests.factories import ContactFactory
from outreach.tenancy import access_services
from outreach.tenancy.models import AuditEntry, Role, TenantMembership
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields
from outreach.tenancy.tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    Endpoint("GET", "members", Role.ADMIN, detail=False),
    Endpoint("POST", "members", Role.OWNER, body={"email": "newcomer@example.com", "role": "member"}, ok=(201,),
             detail=False),
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
    body = owner.post("/api/v1/members", {"email": "dana@seller.example", "role": "viewer"}, format="json").json()
    assert (body["username"], body["role"]) == ("dana", "viewer")
    assert owner.patch(f"/api/v1/members/{body['id']}", {"role": "admin"}, format="json").json()["role"] == "admin"
    again = owner.post("/api/v1/members", {"email": "DANA@seller.example", "role": "viewer"}, format="json")
    assert again.status_code == 409
    actions = AuditEntry.objects.filter(tenant=tenant, action__startswith="membership.")
    assert set(actions.values_list("action", flat=True)) == {"membership.add", "membership.role"}


def test_an_owner_can_neither_probe_nor_attach_another_tenants_user_by_email(tenant, other_tenant):
    # Users are global: adding by email once answered 201 with the user's id and name for another tenant's
    # user (attaching them without consent) and 400 for an unknown address, so any owner could probe addresses.
    theirs = MembershipFactory(tenant=other_tenant, role=Role.OWNER,
                               user=UserFactory(username="alice", email="alice@tenant-a.example")).user
    owner = api_client(tenant=tenant, role=Role.OWNER)
    known = owner.post("/api/v1/members", {"email": "alice@tenant-a.example", "role": "viewer"}, format="json")
    unknown = owner.post("/api/v1/members", {"email": "nobody@nowhere.example", "role": "viewer"}, format="json")
    assert known.status_code == unknown.status_code == 400
    assert known.json() == unknown.json()
    assert known.json()["message"] == access_services.MEMBER_ADD_REFUSED and error_fields(known) == {"email"}
    assert "alice" not in known.content.decode()
    assert not TenantMembership.objects.filter(tenant=tenant, user=theirs).exists()
    assert not AuditEntry.objects.filter(tenant=tenant, action="membership.add").exists()


def test_a_staff_user_of_another_tenant_an_inactive_or_an_ambiguous_address_gets_the_same_refusal(
        tenant, other_tenant):
    staff = UserFactory(username="ops", email="ops@operator.example", is_staff=True)
    MembershipFactory(tenant=other_tenant, user=staff, role=Role.ADMIN)
    UserFactory(username="gone", email="gone@example.com", is_active=False)
    UserFactory(username="twin1", email="twin@example.com")
    UserFactory(username="twin2", email="TWIN@example.com")
    owner = api_client(tenant=tenant, role=Role.OWNER)
    for address in ("ops@operator.example", "gone@example.com", "twin@example.com"):
        response = owner.post("/api/v1/members", {"email": address, "role": "member"}, format="json")
        assert (response.status_code, response.json()["message"], error_fields(response)) == (
            400, access_services.MEMBER_ADD_REFUSED, {"email"}), address
    assert TenantMembership.objects.filter(tenant=tenant).count() == 0


def test_a_signed_up_user_of_no_tenant_is_attached_once(tenant, other_tenant):
    UserFactory(username="newbie", email="newbie@example.com")
    first = api_client(tenant=tenant, role=Role.OWNER).post(
        "/api/v1/members", {"email": "newbie@example.com", "role": "member"}, format="json")
    assert first.status_code == 201 and first.json()["username"] == "newbie"
    second = api_client(tenant=other_tenant, role=Role.OWNER).post(
        "/api/v1/members", {"email": "newbie@example.com", "role": "member"}, format="json")
    assert (second.status_code, second.json()["message"]) == (400, access_services.MEMBER_ADD_REFUSED)


def test_the_operator_path_still_attaches_a_user_of_another_tenant(tenant, other_tenant):
    # membership_add is for operators (demo seeding, scripts): no tenant reaches it.
    user = MembershipFactory(tenant=other_tenant, role=Role.OWNER).user
    membership = access_services.membership_add(tenant=tenant, user_identifier=user.get_username(),
                                                role=Role.ADMIN, actor_role=Role.OWNER, actor_label="operator")
    assert (membership.tenant_id, membership.user_id) == (tenant.pk, user.pk)


@pytest.mark.parametrize("payload, field", [
    ({"email": "nobody@example.com", "role": "member"}, "email"),
    ({"email": "not an address", "role": "member"}, "email"),
    ({"user": "dana", "role": "member"}, "email"),  # the old field: an email is required now
    ({"role": "member"}, "email"),
    ({"email": "dana@example.com", "role": "emperor"}, "role"),
])
def test_invalid_input_is_a_400_naming_the_field(tenant, payload, field):
    UserFactory(username="dana")
    response = api_client(tenant=tenant, role=Role.OWNER).post("/api/v1/members", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


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
    assert response.status_code == 400 and "X-Tenant" in error_fields(response)
    response = client.get("/api/v1/contacts", HTTP_X_TENANT=other_tenant.slug)
    assert [r["id"] for r in response.json()["results"]] == [theirs.pk]


def test_a_signed_in_user_without_membership_is_refused(tenant):
    client = APIClient()
    client.force_login(UserFactory())
    assert client.get("/api/v1/contacts").status_code == 403
