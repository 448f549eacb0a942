"""The admin's analytics dashboard renders its charts from the rollups (server-side SVG, no CDN)."""
from __future__ import annotations

import datetime as dt

import pytest

from analytics.rollups import rollups_catch_up
from analytics.tests.helpers import event, ingest
from messaging.tests.factories import enrolled_message
from outreach import clock

pytestmark = pytest.mark.django_db
URL = "/admin/analytics/tenantanalyticssettings/dashboard/"


def test_the_dashboard_draws_the_tenant_chart_the_senders_and_a_campaigns_funnel(admin_client, tenant):
    message = enrolled_message(tenant=tenant)
    now = clock.now() - dt.timedelta(hours=1)
    ingest([event(message, "processed", now), event(message, "delivered", now)])
    rollups_catch_up()
    campaign = message.contact_campaign.campaign
    campaign.__class__.objects.filter(pk=campaign.pk).update(name="<script>x</script>")

    html = admin_client.get(f"{URL}?tenant={tenant.pk}&campaign={campaign.pk}").content.decode()

    assert html.count('<svg class="metrics-chart"') == 2 and '<svg class="metrics-funnel"' in html
    assert "<polyline" in html and message.sender_identity.from_email in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "https://cdn" not in html


def test_the_dashboard_of_another_tenants_campaign_is_404(admin_client, tenant, other_tenant):
    message = enrolled_message(tenant=other_tenant)
    response = admin_client.get(f"{URL}?tenant={tenant.pk}&campaign={message.contact_campaign.campaign_id}")
    assert response.status_code == 404


def test_the_admin_index_links_the_dashboard(admin_client):
    assert URL in admin_client.get("/admin/").content.decode()
