"""Who may call each leads / contacts / imports endpoint: role, tenant and authentication."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.tests.factories import ContactFactory, ImportJobFactory, LeadFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client


def _csv_upload() -> dict:
    content = b"company,email\nAcme,new.person@acme.example\n"
    return {"file": SimpleUploadedFile("contacts.csv", content, content_type="text/csv")}


ENDPOINTS = [
    Endpoint("GET", "leads", Role.VIEWER, detail=False),
    Endpoint("POST", "leads", Role.MEMBER, body={"name": "Globex", "domain": "globex.example"}, ok=(201,),
             detail=False),
    Endpoint("GET", "leads/{lead}", Role.VIEWER),
    Endpoint("PUT", "leads/{lead}", Role.MEMBER, body={"name": "Acme Renamed", "domain": "acme.example"}),
    Endpoint("PATCH", "leads/{lead}", Role.MEMBER, body={"notes": "met at a fair"}),
    Endpoint("DELETE", "leads/{lead}", Role.MEMBER, ok=(204,)),
    Endpoint("GET", "contacts", Role.VIEWER, detail=False),
    Endpoint("POST", "contacts", Role.MEMBER, body={"email": "x@globex.example"}, ok=(201,), detail=False),
    Endpoint("GET", "contacts/{contact}", Role.VIEWER),
    Endpoint("PUT", "contacts/{contact}", Role.MEMBER, body={"email": "renamed@acme.example"}),
    Endpoint("PATCH", "contacts/{contact}", Role.MEMBER, body={"title": "CTO"}),
    Endpoint("DELETE", "contacts/{contact}", Role.MEMBER, ok=(204,)),
    Endpoint("GET", "imports", Role.VIEWER, detail=False),
    Endpoint("POST", "imports", Role.MEMBER, body=_csv_upload, ok=(202,), detail=False, format="multipart"),
    Endpoint("GET", "imports/{import_job}", Role.VIEWER),
]
IDS = [str(e) for e in ENDPOINTS]


@pytest.fixture
def ids(tenant):
    contact = ContactFactory(tenant=tenant)
    return {"lead": LeadFactory(tenant=tenant).pk, "contact": contact.pk,
            "import_job": ImportJobFactory(tenant=tenant).pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


@pytest.mark.django_db
def test_a_revoked_key_gets_401(tenant, ids):
    from outreach.tenancy.services import api_key_revoke

    client = api_client(tenant=tenant, role=Role.OWNER)
    api_key_revoke(api_key=client.api_key)
    assert client.get("/api/v1/contacts").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["leads", "contacts", "imports"])
def test_lists_never_show_another_tenants_rows(path, other_tenant, ids):
    response = api_client(tenant=other_tenant, role=Role.OWNER).get(f"/api/v1/{path}")
    assert response.status_code == 200
    assert response.json()["results"] == []
