from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from outreach.tenancy.models import ApiKey, Tenant
from outreach.tenancy.selectors import api_key_get_active


@pytest.mark.django_db
def test_create_tenant_prints_a_unique_slug():
    out1, out2 = StringIO(), StringIO()
    call_command("create_tenant", "Acme Sales", stdout=out1)
    call_command("create_tenant", "Acme Sales", stdout=out2)
    assert out1.getvalue().strip() == "acme-sales"
    assert out2.getvalue().strip() == "acme-sales-2"
    assert Tenant.objects.count() == 2


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
