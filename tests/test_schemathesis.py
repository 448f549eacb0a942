"""Property-based API tests: schemathesis generates requests from /api/schema/ and no answer may be a 5xx.

It calls the Django WSGI app in-process (no server, no port) inside the test's transaction, with a real
owner API key, so every operation runs with full rights against a tenant that holds a few rows.
Examples are bounded per operation to keep the run short.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory
from contacts.tests.factories import ContactFactory, ImportJobFactory
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach.tenancy.models import Role
from outreach.tenancy.services import api_key_create
from outreach.tenancy.tests.factories import TenantFactory

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def api_schema(django_db_setup, django_db_blocker):
    # After the test database exists, so no connection to the development database is opened first.
    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def wsgi_in_test_transaction():
    # Django closes "old" connections when a request starts and ends; inside the test's transaction that
    # would drop it. Django's own test client detaches these handlers the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db, wsgi_in_test_transaction, settings):
    # Sender identity sync and creation would call SendGrid: point them at a closed port, so they
    # answer with the documented refusal rather than reaching anything real.
    settings.SENDGRID_API_HOST = "http://127.0.0.1:9"
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 0.5
    tenant = TenantFactory()
    ContactCampaignFactory.create_batch(2, tenant=tenant)
    ContactFactory.create_batch(2, tenant=tenant)
    CampaignFactory(tenant=tenant)
    ImportJobFactory(tenant=tenant)
    EmailSenderIdentityFactory(tenant=tenant)
    issued = api_key_create(tenant=tenant, role=Role.OWNER)
    return {"Authorization": f"Bearer {issued.raw_key}"}


# The marker (not only the `db` fixture, which schemathesis resolves late) tells pytest-django that this
# test needs the test database, so it is created before the schema fixture runs.
@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail_with_a_5xx(case, auth_headers):
    # The SendGrid-backed 503 of `sync` is documented; everything else must never be a 5xx.
    response = case.call(headers=auth_headers)
    if case.path.endswith("/sync") and response.status_code == 503:
        return
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance],
                           headers=auth_headers)
