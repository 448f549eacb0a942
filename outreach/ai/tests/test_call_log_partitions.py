"""The AI call log is partitioned by month and kept RETENTION_DAYS["ai_calls"] days: old months go whole."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from outreach import clock
from outreach.ai.models import AICall
from outreach.partitioning import partitions, partitions_ensure
from outreach.retention import DROP, retention_apply, retention_plan

pytestmark = pytest.mark.django_db


def _call(**kwargs) -> AICall:
    return AICall.objects.create(purpose="plan", model="gpt-4o-mini", **kwargs)


def test_an_old_month_of_ai_calls_is_dropped_whole_and_the_recent_one_kept(settings, monkeypatch, tenant):
    first = next(p for p in partitions("ai_calls") if not p.is_default)
    monkeypatch.setattr(clock, "now", lambda: first.start + dt.timedelta(days=2))
    _call(tenant=tenant)
    later = first.start + dt.timedelta(days=settings.RETENTION_DAYS["ai_calls"] + 40)
    monkeypatch.setattr(clock, "now", lambda: later)
    partitions_ensure(now=later)
    recent = _call(tenant=tenant)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction holds deferred FK checks
    fates = {f.partition: f.fate for f in retention_plan(now=later) if f.table == "ai_calls"}
    assert fates[first.name] == DROP

    retention_apply(now=later)

    assert list(AICall.objects.values_list("id", flat=True)) == [recent.id]
