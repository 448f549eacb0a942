"""The one clock: virtual time in the demo, wall time otherwise, and every stored timestamp follows it.

(Production refusing a fast clock is tested with the other production settings in test_foundation_settings.)
"""
from __future__ import annotations

import datetime as dt
import time

import pytest

from messaging.compliance import unsubscribe_record
from outreach import clock
from outreach.tenancy.tests.factories import TenantFactory

TEN_DAYS = 10 * 86400


@pytest.fixture
def fast_clock(settings):
    settings.CLOCK_SPEED = 3600.0
    clock.start_virtual_clock(virtual_start=time.time() + TEN_DAYS)
    yield
    clock._cached_epoch = None


def test_the_wall_clock_is_used_at_speed_one(settings):
    settings.CLOCK_SPEED = 1.0
    assert abs((clock.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 1


def test_a_fast_clock_starts_at_its_anchor_and_runs_at_its_speed(fast_clock):
    first = clock.now()
    assert first - dt.datetime.now(dt.UTC) > dt.timedelta(days=9, hours=23)
    time.sleep(0.05)
    assert clock.now() - first >= dt.timedelta(seconds=0.05 * 3600 * 0.9)


def test_a_second_process_reads_the_same_anchor_from_redis(fast_clock):
    clock._cached_epoch = None  # as a freshly started worker would
    assert clock.now() - dt.datetime.now(dt.UTC) > dt.timedelta(days=9, hours=23)


@pytest.mark.django_db
def test_auto_timestamps_come_from_the_virtual_clock(fast_clock):
    tenant = TenantFactory()
    opt_out = unsubscribe_record(tenant=tenant, channel="email", value="dana@acme.example", source="manual")

    for stamp in (tenant.created_at, opt_out.created_at):
        assert stamp - dt.datetime.now(dt.UTC) > dt.timedelta(days=9, hours=23)
        assert abs(stamp - clock.now()) < dt.timedelta(hours=2)

