"""Throttling: the REST API per API key and per tenant (Redis), the admin login per username and address."""
from __future__ import annotations

import time

import pytest

from outreach.ai.client import redis_client
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client
from outreach.tenancy.tests.factories import UserFactory
from outreach.tenancy.throttling import TenantRateThrottle, parse_rate

URL = "/api/v1/leads"


def _forget_tenant_counts(tenant, rate: str) -> None:
    """A new test database reuses tenant ids: drop what an earlier run counted for this one."""
    _, period = parse_rate(rate)
    redis_client().delete(TenantRateThrottle().window_key(f"tenant:{tenant.pk}", period, time.time()))


@pytest.mark.django_db
def test_a_key_past_its_rate_gets_a_429_in_the_one_error_shape_with_retry_after(tenant, settings):
    settings.API_THROTTLE_RATE_PER_KEY = "3/hour"
    _forget_tenant_counts(tenant, settings.API_THROTTLE_RATE_PER_TENANT)
    client = api_client(tenant=tenant, role=Role.VIEWER)

    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(URL)

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    body = refused.json()
    assert (body["type"], body["code"]) == ("client_error", "throttled") and body["errors"] == []
    # Another key of the same tenant is counted on its own.
    assert api_client(tenant=tenant, role=Role.VIEWER).get(URL).status_code == 200


@pytest.mark.django_db
def test_a_tenants_keys_share_the_tenant_rate_and_other_tenants_are_not_affected(tenant, other_tenant, settings):
    settings.API_THROTTLE_RATE_PER_TENANT = "4/hour"
    for each in (tenant, other_tenant):
        _forget_tenant_counts(each, settings.API_THROTTLE_RATE_PER_TENANT)
    first, second = (api_client(tenant=tenant, role=Role.VIEWER) for _ in range(2))

    statuses = [client.get(URL).status_code for client in (first, second, first, second, first, second)]

    assert statuses == [200, 200, 200, 200, 429, 429]
    assert api_client(tenant=other_tenant, role=Role.VIEWER).get(URL).status_code == 200


@pytest.mark.django_db
def test_the_admin_login_locks_out_after_the_failure_limit_even_with_the_right_password(client, settings):
    UserFactory(username="ops", password="the-right-one", is_staff=True, is_superuser=True)
    login = "/admin/login/?next=/admin/"

    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(login, {"username": "ops", "password": "wrong"})
    response = client.post(login, {"username": "ops", "password": "the-right-one"})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


@pytest.mark.django_db
def test_a_few_wrong_passwords_do_not_lock_out_the_right_one(client, settings):
    UserFactory(username="ops", password="the-right-one", is_staff=True, is_superuser=True)
    login = "/admin/login/?next=/admin/"

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(login, {"username": "ops", "password": "wrong"})
    response = client.post(login, {"username": "ops", "password": "the-right-one"})

    assert response.status_code == 302 and client.session["_auth_user_id"]


@pytest.mark.django_db
def test_behind_a_proxy_the_lockout_is_per_client_address_and_a_forged_forwarded_for_is_not_believed(
        client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(username="ops", password="the-right-one", is_staff=True, is_superuser=True)
    login = "/admin/login/?next=/admin/"
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}  # every request reaches Django from the balancer

    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # The attacker rotates a forged left-most entry; the balancer appends the address it really saw.
        client.post(login, {"username": "ops", "password": "wrong"},
                    HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}, 203.0.113.7", **via_proxy)
    locked = client.post(login, {"username": "ops", "password": "the-right-one"},
                         HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy)
    colleague = client.post(login, {"username": "ops", "password": "the-right-one"},
                            HTTP_X_FORWARDED_FOR="192.0.2.44", **via_proxy)

    assert locked.status_code == 429
    assert colleague.status_code == 302  # the same balancer, another client: not locked out
