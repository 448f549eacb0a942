"""The deliverability breaker: warning and pause lines with minimum volumes, one alert per condition, the
sender paused through the operators' audited switch with the figures, resolved when the rate recovers."""
from __future__ import annotations

import pytest

from analytics.breaker import deliverability_check
from analytics.models import DeliverabilityAlert, SenderDaily, TenantDaily
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach import clock
from outreach.tenancy.models import AuditEntry

pytestmark = pytest.mark.django_db


def _day(sender, *, sent: int, bounced: int = 0, delivered: int | None = None, spam: int = 0) -> None:
    counts = {"sent": sent, "bounced_hard": bounced, "delivered": sent - bounced if delivered is None else delivered,
              "spam_reports": spam}
    today = clock.now().date()
    SenderDaily.objects.update_or_create(tenant_id=sender.tenant_id, sender_id=sender.pk, day=today, defaults=counts)
    TenantDaily.objects.update_or_create(tenant_id=sender.tenant_id, day=today, defaults=counts)


def test_a_bounce_rate_over_the_pause_line_pauses_the_sender_once_with_an_audited_reason(tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    _day(sender, sent=1000, bounced=60)  # 6%: over the 5% pause line
    opened = deliverability_check()
    assert {(a.sender_id, a.measure, a.level) for a in opened} == {
        (sender.pk, "bounce_rate", "warning"), (sender.pk, "bounce_rate", "pause"),
        (0, "bounce_rate", "warning"), (0, "bounce_rate", "pause")}
    sender.refresh_from_db()
    assert sender.is_paused
    entry = AuditEntry.objects.get(action="sender.pause")
    assert "bounce rate 6.00% over 7 days (60 of 1000; line 5.00%)" in entry.detail["reason"]
    assert deliverability_check() == []  # the same condition again: no second alert, no second pause
    assert AuditEntry.objects.filter(action="sender.pause").count() == 1


def test_a_spam_rate_over_the_warning_line_only_alerts(tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    _day(sender, sent=2000, spam=3)  # 0.15%: over 0.1%, under 0.3%
    levels = {(a.sender_id, a.measure, a.level) for a in deliverability_check()}
    assert (sender.pk, "spam_complaint_rate", "warning") in levels
    assert not any(level == "pause" for *_, level in levels)
    sender.refresh_from_db()
    assert not sender.is_paused


def test_below_the_minimum_volume_nothing_trips(tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    _day(sender, sent=50, bounced=25)
    assert deliverability_check() == []


def test_an_alert_is_resolved_when_the_rate_recovers(tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    _day(sender, sent=1000, bounced=30)  # 3%: warning
    assert deliverability_check()  # the alert this test then sees resolved
    _day(sender, sent=1000, bounced=5)
    deliverability_check()
    assert not DeliverabilityAlert.objects.filter(resolved_at__isnull=True).exists()


def test_open_alerts_show_on_the_dashboard_and_in_the_admin(admin_client, tenant):
    sender = EmailSenderIdentityFactory(tenant=tenant)
    _day(sender, sent=1000, bounced=60)
    deliverability_check()
    html = admin_client.get(f"/admin/analytics/tenantanalyticssettings/dashboard/?tenant={tenant.pk}").content.decode()
    assert f"pause: sender {sender.pk}" in html and f"paused sender {sender.from_email}" in html
    assert admin_client.get("/admin/analytics/deliverabilityalert/").status_code == 200
