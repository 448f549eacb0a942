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


@pytest.fixture
def plan_jobs_broker():
    """An empty plan-generation queue on the test broker, emptied again afterwards."""
    from outreach.testing import broker_purge

    broker_purge("campaign_creation")
    yield
    broker_purge("campaign_creation")
