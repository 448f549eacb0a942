"""API keys: only a hash is stored, the prefix identifies a key, revoked keys stop working."""
from __future__ import annotations

import datetime as dt

import pytest
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.authentication import ApiKeyAuthentication, ApiKeyPrincipal
from outreach.tenancy.models import ApiKey, AuditEntry
from outreach.tenancy.services import api_key_create, api_key_revoke, hash_api_key
from outreach.tenancy.tests.factories import UserFactory


def _authenticate(raw_key: str | None, scheme: str = "Bearer"):
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {raw_key}"} if raw_key is not None else {}
    request = Request(APIRequestFactory().get("/api/v1/leads", **headers))
    return ApiKeyAuthentication().authenticate(request)


@pytest.mark.django_db
def test_only_the_hash_of_a_new_key_is_stored(tenant):
    issued = api_key_create(tenant=tenant, role="member", name="CRM sync")

    row = ApiKey.objects.values().get(pk=issued.api_key.pk)
    assert row["key_hash"] == hash_api_key(issued.raw_key)
    assert issued.raw_key not in {str(value) for value in row.values()}
    assert len(issued.raw_key) > 40  # 256 bits of secret after the prefix


@pytest.mark.django_db
def test_the_prefix_is_visible_and_identifies_the_key(tenant):
    issued = api_key_create(tenant=tenant, role="viewer")

    assert issued.raw_key.startswith(f"ok_{issued.api_key.prefix}_")
    assert len(issued.api_key.prefix) == 8
    assert str(issued.api_key).startswith(issued.api_key.prefix)
    assert issued.api_key.prefix not in issued.api_key.key_hash


@pytest.mark.django_db
def test_a_valid_key_authenticates_as_its_tenant_and_role(tenant):
    issued = api_key_create(tenant=tenant, role="admin")

    principal, auth = _authenticate(issued.raw_key)

    assert isinstance(principal, ApiKeyPrincipal)
    assert (principal.tenant, principal.role, auth) == (tenant, "admin", issued.api_key)


@pytest.mark.django_db
def test_a_revoked_key_is_rejected(tenant):
    issued = api_key_create(tenant=tenant, role="admin")
    api_key_revoke(api_key=issued.api_key)

    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid or revoked"):
        _authenticate(issued.raw_key)


@pytest.mark.django_db
def test_revoking_twice_keeps_the_first_time_and_audits_once(tenant):
    actor = UserFactory()
    key = api_key_create(tenant=tenant, role="member").api_key

    api_key_revoke(api_key=key, actor=actor)
    first_revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at
    api_key_revoke(api_key=ApiKey.objects.get(pk=key.pk), actor=actor)

    assert ApiKey.objects.get(pk=key.pk).revoked_at == first_revoked_at
    entry = AuditEntry.objects.get(action="api_key.revoke")
    assert (entry.actor, entry.tenant, entry.target_id) == (actor, tenant, str(key.pk))


@pytest.mark.django_db
def test_a_tampered_or_unknown_key_is_rejected(tenant):
    issued = api_key_create(tenant=tenant, role="member")

    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(issued.raw_key[:-1] + ("A" if issued.raw_key[-1] != "A" else "B"))
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(f"ok_{issued.api_key.prefix}_guess")


@pytest.mark.django_db
def test_requests_without_a_bearer_key_are_left_to_other_authenticators(tenant):
    assert _authenticate(None) is None
    assert _authenticate("user:password", scheme="Basic") is None


def test_an_unknown_role_is_refused_before_anything_is_stored(db, tenant):
    with pytest.raises(ApplicationError, match="Unknown role 'superuser'"):
        api_key_create(tenant=tenant, role="superuser")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_authenticating_records_when_the_key_was_last_used(tenant):
    issued = api_key_create(tenant=tenant, role="member")

    _authenticate(issued.raw_key)

    issued.api_key.refresh_from_db()
    assert issued.api_key.last_used_at is not None


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute_so_a_busy_key_costs_no_write_per_call(
        tenant, django_assert_num_queries):
    issued = api_key_create(tenant=tenant, role="member")
    _authenticate(issued.raw_key)
    first = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at

    with django_assert_num_queries(1):  # the key lookup only
        _authenticate(issued.raw_key)

    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at == first


@pytest.mark.django_db
def test_a_stamp_older_than_a_minute_is_refreshed(tenant):
    issued = api_key_create(tenant=tenant, role="member")
    stale = clock.now() - dt.timedelta(minutes=2)
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=stale)

    _authenticate(issued.raw_key)

    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at > stale
