"""Fixtures shared by messaging's tests."""
from __future__ import annotations

import pytest

INBOUND_PATH = "/webhooks/sendgrid/inbound"
INBOUND_SECRET = "s3cret-inbound"


@pytest.fixture
def inbound_url(settings) -> str:
    """The Inbound Parse endpoint, with the settings' credentials set to the ones `post_and_process` sends."""
    settings.SENDGRID_INBOUND_SECRET = INBOUND_SECRET
    settings.SENDGRID_INBOUND_USERNAME = "inbound"
    return INBOUND_PATH
