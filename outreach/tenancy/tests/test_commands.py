from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from outreach.tenancy.models import ApiKey, Tenant
from outreach.tenancy.selectors import api_key_get_active


@pytest.mark.django_db
def test_create_tenant_prints_the_slug():
    out = StringIO()
    call_command("create_tenant", "Acme Sales", stdout=out)
    assert out.getvalue().strip() == "acme-sales"


@pytest.mark.django_db
def test_create_tenant_run_twice_refuses_naming_the_existing_slug_and_creates_nothing():
    call_command("create_tenant", "Acme Sales", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists with slug 'acme-sales'"):
        call_command("create_tenant", "acme sales", stdout=StringIO())
    with pytest.raises(CommandError, match="slug 'acme-sales'"):
        call_command("create_tenant", "Other team", "--slug", "acme-sales", stdout=StringIO())
    assert list(Tenant.objects.values_list("slug", flat=True)) == ["acme-sales"]


@pytest.mark.django_db
def test_create_api_key_prints_a_key_that_authenticates_and_stores_only_its_hash(tenant):
    out = StringIO()
    call_command("create_api_key", "--tenant", tenant.slug, "--role", "admin", stdout=out)
    raw_key = out.getvalue().strip()
    stored = ApiKey.objects.get()
    assert raw_key not in (stored.key_hash, stored.prefix)
    assert raw_key.startswith(f"ok_{stored.prefix}_")
    assert api_key_get_active(raw_key=raw_key) == stored
    assert stored.role == "admin"


@pytest.mark.django_db
def test_create_api_key_for_unknown_tenant_fails_clearly():
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("create_api_key", "--tenant", "nope", "--role", "admin")
