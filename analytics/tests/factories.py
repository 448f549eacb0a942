import datetime as dt

import factory

from analytics.models import DeliverabilityAlert, TenantAnalyticsSettings
from outreach import clock
from outreach.tenancy.tests.factories import TenantFactory

DAY = dt.date(2026, 3, 2)
HOUR = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


class TenantAnalyticsSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TenantAnalyticsSettings

    tenant = factory.SubFactory(TenantFactory)
    time_zone = "Europe/Berlin"


class DeliverabilityAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliverabilityAlert

    tenant = factory.SubFactory(TenantFactory)
    sender_id = 0
    measure = "bounce_rate"
    level = DeliverabilityAlert.Level.WARNING
    value = 0.03
    numerator = 30
    denominator = 1000
    window_days = 7
    threshold = 0.02
    created_at = factory.LazyFunction(clock.now)


# One row of each rollup table (and the other analytics rows), by model name: the constraint and admin tests.
ROLLUP_KEYS = {
    "ContactHourly": {"tenant_id": 1, "contact_id": 1, "campaign_id": 1, "hour": HOUR},
    "CampaignDaily": {"tenant_id": 1, "campaign_id": 1, "day": DAY, "node_id": "email_intro", "plan_source": "ai",
                      "sender_id": 1},
    "TenantDaily": {"tenant_id": 1, "day": DAY},
    "SenderDaily": {"tenant_id": 1, "day": DAY, "sender_id": 1},
    "DomainDaily": {"tenant_id": 1, "day": DAY, "domain": "acme.example"},
    "MessageFirst": {"message_id": 1, "kind": "open", "occurred_at": HOUR},
    "PendingFact": {"tenant_id": 1, "kind": "delivered", "occurred_at": HOUR, "stored_at": HOUR},
}
