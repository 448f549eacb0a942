"""The admin index counts what each app holds: the base layer asks the apps through a Listeners point."""
from __future__ import annotations

import re

import pytest

from campaigns.tests.factories import CampaignFactory
from messaging.tests.factories import EmailSenderIdentityFactory


@pytest.mark.django_db
def test_the_index_counts_paused_campaigns_and_paused_senders(admin_client, tenant):
    CampaignFactory.create_batch(2, tenant=tenant, status="paused")
    CampaignFactory(tenant=tenant, status="active")
    EmailSenderIdentityFactory.create_batch(3, tenant=tenant, is_paused=True)

    html = admin_client.get("/admin/").content.decode()

    assert re.search(r"Paused campaigns: <a [^>]*>2</a>", html)
    assert re.search(r"Paused sender identities: <a [^>]*>3</a>", html)
