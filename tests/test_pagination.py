"""Cursor pagination: a cursor we did not issue, or a bad page size, is a 400 naming the parameter, never a 500."""
from base64 import b64encode

import pytest

from contacts.tests.factories import LeadFactory
from outreach.tenancy.tests.api_clients import api_client, error_fields


def _cursor(querystring: str) -> str:
    return b64encode(querystring.encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["leads", "contacts", "campaigns", "unsubscribes", "imports"])
@pytest.mark.parametrize("forged", ["p=not-a-date", "p=2026-13-45T99:00:00", "o=-1", "garbage!!"])
def test_a_forged_cursor_is_a_400_naming_cursor_not_a_500(path, forged, tenant):
    client = api_client(tenant=tenant)
    cursor = forged if forged == "garbage!!" else _cursor(forged)
    response = client.get(f"/api/v1/{path}", {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": "cursor", "code": "invalid", "message": "Invalid cursor"}]


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", ["abc", "0", "-3", "1.5"])
def test_a_bad_page_size_is_a_400_naming_page_size(page_size, tenant):
    response = api_client(tenant=tenant).get("/api/v1/leads", {"page_size": page_size})
    assert response.status_code == 400, response.content
    assert error_fields(response) == {"page_size"}


@pytest.mark.django_db
def test_a_page_size_over_the_maximum_is_capped(tenant):
    LeadFactory.create_batch(3, tenant=tenant)
    response = api_client(tenant=tenant).get("/api/v1/leads", {"page_size": "100000"})
    assert response.status_code == 200 and len(response.json()["results"]) == 3


@pytest.mark.django_db
def test_a_cursor_we_issued_still_pages_through_every_row(tenant):
    LeadFactory.create_batch(5, tenant=tenant)
    client = api_client(tenant=tenant)
    seen, url = [], "/api/v1/leads?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == 5
