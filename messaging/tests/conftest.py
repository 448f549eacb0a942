"""messaging's test fixtures that every test here needs."""
from __future__ import annotations

import pytest

from messaging.delivery.outage import outage_reset

INBOUND_PATH = "/webhooks/sendgrid/inbound"
INBOUND_SECRET = "s3cret-inbound"


@pytest.fixture(autouse=True)
def _provider_outage_breaker_closed():
    """The outage breaker lives in Redis (every worker sees it): a test that opened it must not hold the next
    test's mail."""
    outage_reset()
    yield
    outage_reset()


@pytest.fixture
def inbound_url(settings) -> str:
    """The Inbound Parse endpoint, with the settings' credentials set to the ones `post_and_process` sends."""
    settings.SENDGRID_INBOUND_SECRET = INBOUND_SECRET
    settings.SENDGRID_INBOUND_USERNAME = "inbound"
    return INBOUND_PATH
