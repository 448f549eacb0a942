"""messaging's test fixtures that every test here needs."""
from __future__ import annotations

import pytest

from messaging.delivery.outage import outage_reset


@pytest.fixture(autouse=True)
def _provider_outage_breaker_closed():
    """The outage breaker lives in Redis (every worker sees it): a test that opened it must not hold the next
    test's mail."""
    outage_reset()
    yield
    outage_reset()
