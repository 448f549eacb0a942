"""The metrics API reads the rollups: totals, steps, periods, senders and domains, rates, CSV, ranges."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from analytics.models import TenantAnalyticsSettings
from analytics.rollups import rollups_catch_up
from analytics.tests.helpers import T0, event, ingest
from campaigns.tests.factories import CampaignFactory
from messaging.tests.factories import enrolled_message
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import Endpoint, access_matrix_tests, api_client, error_fields

pytestmark = pytest.mark.django_db
HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
RANGE = "from=2026-03-01&to=2026-03-31"

ENDPOINTS = [
    Endpoint("GET", "metrics/campaigns/{campaign}", Role.VIEWER),
    Endpoint("GET", "metrics/tenant", Role.VIEWER, detail=False),
    Endpoint("GET", "metrics/senders", Role.VIEWER, detail=False),
    Endpoint("GET", "metrics/domains", Role.VIEWER, detail=False),
]


@pytest.fixture
def ids(tenant):
    return {"campaign": CampaignFactory(tenant=tenant).pk}


(test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
 test_another_tenants_owner_key_gets_404, test_no_key_gets_401) = access_matrix_tests(ENDPOINTS)


@pytest.fixture
def traffic(tenant):
    """Two messages of one campaign: both sent and delivered, one opened twice and clicked, one bounced."""
    a = enrolled_message(tenant=tenant, email="ann@acme.example")
    b = enrolled_message(campaign=a.contact_campaign.campaign, email="bob@bolt.example")
    ingest([event(a, "processed", T0), event(b, "processed", T0), event(a, "delivered", T0),
            event(b, "delivered", T0), event(a, "open", T0 + dt.timedelta(hours=1), useragent=HUMAN_UA),
            event(a, "open", T0 + dt.timedelta(days=2), useragent=HUMAN_UA),
            event(a, "click", T0 + dt.timedelta(days=2), url="https://x.example", useragent=HUMAN_UA),
            event(b, "bounce", T0 + dt.timedelta(days=8), type="bounce")])
    rollups_catch_up()
    return a, b


def _get(tenant, path: str):
    return api_client(tenant=tenant, role=Role.VIEWER).get(f"/api/v1/metrics/{path}")


def test_campaign_metrics_show_totals_rates_steps_periods_and_senders(tenant, traffic, django_assert_num_queries):
    a, _ = traffic
    campaign_id = a.contact_campaign.campaign_id
    client = api_client(tenant=tenant, role=Role.VIEWER)
    # API key, time zone, campaign exists, totals, by step, series, by sender, sender names
    with django_assert_num_queries(8):
        body = client.get(f"/api/v1/metrics/campaigns/{campaign_id}?{RANGE}").json()
    totals = body["totals"]
    assert (totals["sent"], totals["delivered"], totals["opens_human"], totals["unique_human_opens"],
            totals["unique_clickers"], totals["bounced_hard"]) == (2, 2, 2, 1, 1, 1)
    assert (totals["human_open_rate"], totals["click_rate"], totals["bounce_rate"], totals["reply_rate"],
            totals["positive_reply_rate"]) == (0.5, 0.5, 0.5, 0.0, None)
    assert [(s["node_id"], s["sent"]) for s in body["by_step"]] == [(a.node_id, 2)]
    assert [(p["period"], p["sent"], p["opens_human"]) for p in body["series"]] == [
        ("2026-03-02", 2, 1), ("2026-03-04", 0, 1), ("2026-03-10", 0, 0)]
    assert [(s["from_email"], s["sent"]) for s in body["by_sender"]] == [(a.sender_identity.from_email, 2)]


def test_weeks_and_hours_bucket_the_series(tenant, traffic):
    campaign_id = traffic[0].contact_campaign.campaign_id
    weeks = _get(tenant, f"campaigns/{campaign_id}?{RANGE}&granularity=week").json()["series"]
    assert [(w["period"], w["sent"], w["bounced"]) for w in weeks] == [("2026-03-02", 2, 0), ("2026-03-09", 0, 1)]
    hours = _get(tenant, f"campaigns/{campaign_id}?from=2026-03-02&to=2026-03-02&granularity=hour").json()["series"]
    assert [(h["period"], h["sent"], h["opens_human"]) for h in hours] == [
        ("2026-03-02T09:00:00+00:00", 2, 0), ("2026-03-02T10:00:00+00:00", 0, 1)]


def test_days_follow_the_tenants_time_zone(tenant, traffic):
    TenantAnalyticsSettings.objects.create(tenant=tenant, time_zone="Pacific/Kiritimati")  # UTC+14
    call_command("analytics_rebuild", "--from", "2026-03-01", "--to", "2026-03-31")
    body = _get(tenant, f"tenant?{RANGE}").json()
    assert body["time_zone"] == "Pacific/Kiritimati"
    assert [(p["period"], p["sent"]) for p in body["series"] if p["sent"]] == [("2026-03-02", 2)]
    assert [p["period"] for p in body["series"] if p["bounced"]] == ["2026-03-10"]  # 09:30 UTC is 23:30 there


def test_tenant_metrics_by_campaign_senders_and_domains(tenant, traffic):
    a, _ = traffic
    body = _get(tenant, f"tenant?{RANGE}").json()
    assert body["totals"]["sent"] == 2
    assert [(c["campaign_id"], c["name"], c["sent"]) for c in body["by_campaign"]] == [
        (a.contact_campaign.campaign_id, a.contact_campaign.campaign.name, 2)]
    senders = _get(tenant, f"senders?{RANGE}").json()["senders"]
    assert [(s["sender_id"], s["bounce_rate"]) for s in senders] == [(a.sender_identity_id, 0.5)]
    domains = _get(tenant, f"domains?{RANGE}").json()["domains"]
    assert {d["domain"]: d["bounced_hard"] for d in domains} == {"acme.example": 0, "bolt.example": 1}


def test_another_tenants_traffic_never_shows(other_tenant, traffic):
    assert _get(other_tenant, f"tenant?{RANGE}").json()["totals"]["sent"] == 0
    assert _get(other_tenant, f"senders?{RANGE}").json()["senders"] == []


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-03-05&to=2026-03-01", "to"),
    ("from=2026-03-05&to=2026-03-01&format=csv", "to"),  # errors stay JSON
    ("from=2025-01-01&to=2026-03-01", "to"),
    ("from=March", "from"),
    ("granularity=month", "granularity"),
    ("from=2026-01-01&to=2026-03-01&granularity=hour", "granularity"),
    ("colour=red", "colour"),
])
def test_a_bad_range_or_granularity_is_a_400_naming_the_field(tenant, ids, query, field):
    response = _get(tenant, f"campaigns/{ids['campaign']}?{query}")
    assert response.status_code == 400 and error_fields(response) == {field}


def test_csv_export_has_a_line_per_row_and_neutralises_formulas(tenant, traffic):
    a, _ = traffic
    a.contact_campaign.campaign.__class__.objects.filter(pk=a.contact_campaign.campaign_id).update(name="=HYPERLINK(1)")
    response = _get(tenant, f"tenant?{RANGE}&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("section,period,node_id,plan_source,campaign_id,name,sender_id,from_email,domain,"
                               "sent,delivered")
    assert lines[1].startswith("totals,,,,,,,,,2,2")
    assert f"by_campaign,,,,{a.contact_campaign.campaign_id},'=HYPERLINK(1),,,,2,2" in lines[-1]
