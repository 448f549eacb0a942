"""Root fixtures shared by every app's tests."""
import pytest


@pytest.fixture
def tenant(db):
    from outreach.tenancy.tests.factories import TenantFactory

    return TenantFactory()


@pytest.fixture
def other_tenant(db):
    from outreach.tenancy.tests.factories import TenantFactory

    return TenantFactory()
