"""Who may call each campaigns / enrolments endpoint: role, tenant and authentication."""
from __future__ import annotations

import pytest

from campaigns.tests.factories import CampaignFactory, example_plan, purge_queues, started_contact_campaign
from contacts.tests.factories import ContactFactory
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client

ENDPOINTS = [
    Endpoint("GET", "campaigns", Role.VIEWER, detail=False),
    Endpoint("POST", "campaigns", Role.MEMBER, body={"name": "Q1 push", "goal": "A demo", "offer": "Faster onboarding"},
             ok=(201,), detail=False),
    Endpoint("GET", "campaigns/{campaign}", Role.VIEWER),
    Endpoint("PUT", "campaigns/{campaign}", Role.MEMBER, body={"name": "Renamed", "goal": "A demo", "offer": "Faster"}),
    Endpoint("PATCH", "campaigns/{campaign}", Role.MEMBER, body={"offer": "A discount"}),
    Endpoint("POST", "campaigns/{campaign}/enrol", Role.MEMBER, body=lambda: {"contact_ids": [], "lead_ids": []},
             ok=(400,)),  # a valid call needs ids of the tenant; see the enrol tests
    Endpoint("POST", "campaigns/{campaign}/pause", Role.MEMBER, body={"reason": "holiday"}),
    Endpoint("POST", "campaigns/{campaign}/resume", Role.MEMBER),
    Endpoint("POST", "campaigns/{campaign}/cancel", Role.MEMBER),
    Endpoint("GET", "campaigns/{campaign}/metrics", Role.VIEWER),
    Endpoint("GET", "contact-campaigns", Role.VIEWER, detail=False),
    Endpoint("GET", "contact-campaigns/{cc}", Role.VIEWER),
    Endpoint("POST", "contact-campaigns/{cc}/events", Role.MEMBER, body={"type": "meeting_booked"}),
    Endpoint("POST", "contact-campaigns/{cc}/pause", Role.MEMBER),
    Endpoint("POST", "contact-campaigns/{cc}/resume", Role.MEMBER),
    Endpoint("POST", "contact-campaigns/{cc}/cancel", Role.MEMBER),
    Endpoint("GET", "contacts/{contact}/campaigns", Role.VIEWER),
    Endpoint("POST", "contacts/{contact}/campaigns", Role.MEMBER, body=lambda: {"campaign": _CAMPAIGN[0],
                                                                             "plan": example_plan()}, ok=(201,)),
]
IDS = [str(e) for e in ENDPOINTS]
_CAMPAIGN: list[int] = []  # the current test's campaign id, for request bodies built at call time


@pytest.fixture
def ids(tenant):
    purge_queues()
    cc = started_contact_campaign(tenant=tenant)
    campaign = CampaignFactory(tenant=tenant)
    _CAMPAIGN[:] = [campaign.pk]
    yield {"campaign": campaign.pk, "cc": cc.pk, "contact": ContactFactory(tenant=tenant).pk}
    purge_queues()


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["campaigns", "contact-campaigns"])
def test_lists_never_show_another_tenants_rows(path, other_tenant, ids):
    response = api_client(tenant=other_tenant, role=Role.OWNER).get(f"/api/v1/{path}")
    assert response.status_code == 200
    assert response.json()["results"] == []
