"""API key management over the API: admins issue and revoke; nobody grants more than they hold."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from outreach.tenancy.models import ApiKey, AuditEntry, Role
from outreach.tenancy.services import api_key_create
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    Endpoint("GET", "api-keys", Role.ADMIN, detail=False),
    Endpoint("POST", "api-keys", Role.ADMIN, body={"name": "CRM sync", "role": "member"}, ok=(201,), detail=False),
    Endpoint("GET", "api-keys/{key}", Role.ADMIN),
    Endpoint("POST", "api-keys/{key}/revoke", Role.ADMIN),
]
IDS = [str(e) for e in ENDPOINTS]


@pytest.fixture
def ids(tenant):
    return {"key": api_key_create(tenant=tenant, role=Role.MEMBER, name="existing").api_key.pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


def test_a_new_key_is_shown_once_and_works(tenant):
    admin = api_client(tenant=tenant, role=Role.ADMIN)
    body = admin.post("/api/v1/api-keys", {"name": "CRM", "role": "viewer"}, format="json").json()
    raw_key = body["key"]
    assert raw_key.startswith(f"ok_{body['prefix']}_")
    assert all("key" not in row for row in admin.get("/api/v1/api-keys").json()["results"])
    assert "key" not in admin.get(f"/api/v1/api-keys/{body['id']}").json()
    assert raw_key not in ApiKey.objects.get(pk=body["id"]).key_hash
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert fresh.get("/api/v1/contacts").status_code == 200
    assert fresh.post("/api/v1/contacts", {"email": "a@b.example"}, format="json").status_code == 403  # a viewer
    assert AuditEntry.objects.filter(tenant=tenant, action="api_key.create", target_id=str(body["id"])).count() == 1


def test_an_admin_cannot_issue_an_owner_key(tenant):
    response = api_client(tenant=tenant, role=Role.ADMIN).post("/api/v1/api-keys", {"role": "owner"}, format="json")
    assert response.status_code == 403
    assert "role" in error_fields(response)
    assert not ApiKey.objects.filter(role=Role.OWNER).exists()


def test_an_unknown_role_is_a_400_naming_role(tenant):
    response = api_client(tenant=tenant, role=Role.OWNER).post("/api/v1/api-keys", {"role": "god"}, format="json")
    assert response.status_code == 400
    assert "role" in error_fields(response)


def test_a_revoked_key_stops_working_at_once(tenant):
    issued = api_key_create(tenant=tenant, role=Role.MEMBER)
    victim = APIClient()
    victim.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    assert victim.get("/api/v1/leads").status_code == 200
    body = api_client(tenant=tenant, role=Role.ADMIN).post(f"/api/v1/api-keys/{issued.api_key.pk}/revoke").json()
    assert body["is_active"] is False and body["revoked_at"]
    assert victim.get("/api/v1/leads").status_code == 401


def test_an_admin_cannot_revoke_an_owner_key(tenant):
    owner_key = api_key_create(tenant=tenant, role=Role.OWNER).api_key
    response = api_client(tenant=tenant, role=Role.ADMIN).post(f"/api/v1/api-keys/{owner_key.pk}/revoke")
    assert response.status_code == 403
    owner_key.refresh_from_db()
    assert owner_key.revoked_at is None


@pytest.mark.parametrize("n", [2, 9])
def test_list_query_count_does_not_grow_with_rows(tenant, n, django_assert_num_queries):
    for _ in range(n):
        api_key_create(tenant=tenant, role=Role.VIEWER)
    client = api_client(tenant=tenant, role=Role.ADMIN)
    with django_assert_num_queries(2):  # API key, page
        response = client.get("/api/v1/api-keys")
    assert len(response.json()["results"]) == n + 1
