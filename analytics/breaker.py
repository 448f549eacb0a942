"""The deliverability breaker: rolling bounce and spam complaint rates per sender identity and per tenant.

Every few minutes (task analytics.check_deliverability) the last BREAKER_WINDOW_DAYS days of the rollups are
read; a rate with at least BREAKER_MIN_VOLUME messages behind it that crosses a warning line opens a warning
alert, one that crosses a pause line opens a pause alert and, for a sender, pauses it through the operators'
audited switch (messaging.interface.sender_identity_set_paused) with the reason and the figures. One open alert
per condition however many events keep it true; it is resolved when the rate falls back under the warning line.
A sender an operator resumes while its alert is still open is not paused again until the condition clears and
recurs. Tenant-wide rates only alert: pausing a whole tenant stays an operator's decision.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

import messaging.interface
from analytics.models import DeliverabilityAlert
from outreach import clock

Level = DeliverabilityAlert.Level


@dataclass(frozen=True)
class Condition:
    tenant_id: int
    sender_id: int  # 0: the tenant
    measure: str
    numerator: int
    denominator: int

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else 0.0


def _lines(measure: str) -> tuple[float, float]:
    if measure == "bounce_rate":
        return settings.BREAKER_BOUNCE_WARNING, settings.BREAKER_BOUNCE_PAUSE
    return settings.BREAKER_SPAM_WARNING, settings.BREAKER_SPAM_PAUSE


def levels_crossed(condition: Condition) -> list[tuple[str, float]]:
    """The lines the condition crosses, (level, line) each: none under the minimum volume."""
    if condition.denominator < settings.BREAKER_MIN_VOLUME:
        return []
    warning, pause = _lines(condition.measure)
    return [(level, line) for level, line in ((Level.WARNING, warning), (Level.PAUSE, pause))
            if condition.value >= line]


_WINDOW_SQL = """
SELECT tenant_id, {sender}, sum(sent), sum(bounced_hard + bounced_soft), sum(delivered), sum(spam_reports)
FROM {table} WHERE day >= %s GROUP BY 1, 2
"""


def conditions(*, since: dt.date) -> list[Condition]:
    """Bounce rate (over sent) and spam complaint rate (over delivered) per sender and per tenant."""
    found: list[Condition] = []
    with connection.cursor() as cursor:
        for table, sender in (("metrics_sender_daily", "sender_id"), ("metrics_tenant_daily", "0")):
            cursor.execute(_WINDOW_SQL.format(table=table, sender=sender), [since])
            for tenant_id, sender_id, sent, bounced, delivered, spam in cursor.fetchall():
                found.append(Condition(tenant_id, sender_id, "bounce_rate", int(bounced), int(sent)))
                found.append(Condition(tenant_id, sender_id, "spam_complaint_rate", int(spam), int(delivered)))
    return found


def _describe(condition: Condition, threshold: float, days: int) -> str:
    return (f"deliverability breaker: {condition.measure.replace('_', ' ')} {condition.value:.2%} over {days} days "
            f"({condition.numerator} of {condition.denominator}; line {threshold:.2%})")


def _pause_sender(condition: Condition, reason: str) -> str:
    identity = messaging.interface.EmailSenderIdentity.objects.filter(
        pk=condition.sender_id, tenant_id=condition.tenant_id).first()
    if identity is None or identity.is_paused:
        return ""
    messaging.interface.sender_identity_set_paused(identity=identity, paused=True, reason=reason)
    return f"paused sender {identity.from_email}"


def _open(condition: Condition, level: str, threshold: float, now: dt.datetime, days: int
          ) -> DeliverabilityAlert | None:
    """Open the alert for this condition and level unless one is open; act on a new pause alert."""
    try:
        with transaction.atomic():
            alert = DeliverabilityAlert.objects.create(
                tenant_id=condition.tenant_id, sender_id=condition.sender_id, measure=condition.measure, level=level,
                value=round(condition.value, 6), numerator=condition.numerator, denominator=condition.denominator,
                window_days=days, threshold=threshold, created_at=now)
            if level == Level.PAUSE and condition.sender_id:
                alert.action = _pause_sender(condition, _describe(condition, threshold, days))
                alert.save(update_fields=["action"])
    except IntegrityError:
        return None  # already open: one alert per condition
    return alert


def deliverability_check() -> list[DeliverabilityAlert]:
    """One breaker pass: open the alerts the window's rates call for, resolve those that no longer hold.
    Returns the alerts opened."""
    now, days = clock.now(), settings.BREAKER_WINDOW_DAYS
    opened: list[DeliverabilityAlert] = []
    holding: set[tuple[int, int, str, str]] = set()
    for condition in conditions(since=now.date() - dt.timedelta(days=days - 1)):
        for level, line in levels_crossed(condition):
            holding.add((condition.tenant_id, condition.sender_id, condition.measure, level))
            alert = _open(condition, level, line, now, days)
            if alert is not None:
                opened.append(alert)
    for alert in DeliverabilityAlert.objects.filter(resolved_at__isnull=True):
        if (alert.tenant_id, alert.sender_id, alert.measure, alert.level) not in holding:
            DeliverabilityAlert.objects.filter(pk=alert.pk).update(resolved_at=now)
    return opened
