"""next_send_time: quiet hours, send days and daylight-saving time (docs/plan-dsl.md, "Time")."""
from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.dsl import WEEKDAYS, parse_plan
from campaigns.scheduling import next_send_time

EXAMPLE_PATH = Path(__file__).resolve().parent.parent / "examples" / "example_plan.json"
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def window(zone: str, quiet: tuple[str, str] | None = None, days: list[str] | None = None) -> dict:
    plan: dict = {"timezone": zone}
    if quiet:
        plan["quietHours"] = {"start": quiet[0], "end": quiet[1]}
    if days:
        plan["sendDays"] = days
    return plan


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- an oracle written independently of the implementation ----------------------------------------------------------

def rule(plan: dict):
    """The spec's rule read literally: the local wall clock at that instant is outside quiet hours on a send day."""
    zone = ZoneInfo(plan["timezone"])
    days = {WEEKDAYS.index(day) for day in plan.get("sendDays", WEEKDAYS)}
    quiet = plan.get("quietHours")
    start = time.fromisoformat(quiet["start"]) if quiet else None
    end = time.fromisoformat(quiet["end"]) if quiet else None

    def allowed_at(instant: datetime) -> bool:
        local = instant.astimezone(zone)
        if local.weekday() not in days:
            return False
        if start is None:
            return True
        now = local.time()
        in_quiet = start <= now < end if start < end else (now >= start or now < end)
        return not in_quiet

    return allowed_at


def allowed(instant: datetime, plan: dict) -> bool:
    return rule(plan)(instant)


# Zones with ordinary DST, a 30-minute DST (Lord Howe), DST at midnight (Santiago, Havana), the southern
# hemisphere, no DST at all, and a zone whose offset changes around Ramadan (Casablanca).
ZONES = [
    "America/New_York", "Europe/Berlin", "America/Los_Angeles", "Australia/Lord_Howe", "America/Santiago",
    "America/Havana", "Pacific/Auckland", "Asia/Kolkata", "UTC", "Africa/Casablanca", "Europe/London",
]


@cache
def offset_changes(zone_name: str) -> tuple[datetime, ...]:
    """UTC minutes at which the zone's offset changes, 2025-2027 (3-hourly scan, then minute by minute)."""
    zone = ZoneInfo(zone_name)
    changes = []
    t = utc(2025, 1, 1)
    previous = t.astimezone(zone).utcoffset()
    while t < utc(2028, 1, 1):
        nxt = t + timedelta(hours=3)
        offset = nxt.astimezone(zone).utcoffset()
        if offset != previous:
            m = t
            while m.astimezone(zone).utcoffset() == previous:
                m += timedelta(minutes=1)
            changes.append(m)
            previous = offset
        t = nxt
    return tuple(changes)


MINUTES = st.integers(min_value=0, max_value=24 * 60 - 1)
# Times around which DST changes happen, so that quiet hours often begin or end in a gap or an overlap.
DST_TIMES = st.sampled_from(["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30", "23:00"])
CLOCK = st.one_of(MINUTES.map(lambda m: f"{m // 60:02d}:{m % 60:02d}"), DST_TIMES)


@st.composite
def plans_and_instants(draw):
    zone = draw(st.sampled_from(ZONES))
    start = draw(CLOCK)
    end = draw(CLOCK.filter(lambda value: value != start))
    quiet = (start, end) if draw(st.integers(0, 9)) else None  # mostly with quiet hours
    days = sorted(draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1)), key=WEEKDAYS.index)
    plan = window(zone, quiet, days if len(days) < 7 or draw(st.booleans()) else None)

    changes = offset_changes(zone)
    if changes and draw(st.booleans()):
        # Close to a DST change: from three days before to a day after.
        anchor = draw(st.sampled_from(changes))
        not_before = anchor + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 24 * 60)))
    else:
        not_before = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31),
                                       timezones=st.just(UTC))).replace(second=0, microsecond=0)
    # Hand it over in an arbitrary zone; only the instant matters.
    shown_in = ZoneInfo(draw(st.sampled_from(ZONES)))
    return plan, not_before.astimezone(shown_in)


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
CHEAP_PROPERTY_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=100)


@PROPERTY_SETTINGS
@given(plans_and_instants())
def test_result_is_allowed_not_early_and_the_earliest_allowed_minute(case):
    plan, not_before = case

    result = next_send_time(plan, not_before)

    # Compare in UTC: Python's == between zones is always False for a time in a DST overlap's second pass.
    not_before = not_before.astimezone(UTC)
    assert result.tzinfo is UTC
    assert result >= not_before
    assert allowed(result, plan), "result inside quiet hours or on a day outside sendDays"
    # No earlier allowed instant: every minute from not_before up to the result is forbidden. (Offsets change on
    # whole minutes in these zones and years, so minutes are fine-grained enough.)
    assert result - not_before < timedelta(days=15)
    allowed_at = rule(plan)
    step = timedelta(minutes=1)
    minute = not_before
    while minute < result:
        assert not allowed_at(minute), f"{minute.isoformat()} was allowed but {result.isoformat()} returned"
        minute += step


@CHEAP_PROPERTY_SETTINGS
@given(plans_and_instants())
def test_allowed_instant_is_returned_unchanged_and_result_is_a_fixed_point(case):
    plan, not_before = case
    result = next_send_time(plan, not_before)
    assert next_send_time(plan, result) == result
    if allowed(not_before, plan):
        assert result == not_before.astimezone(UTC)


# --- explicit daylight-saving cases ---------------------------------------------------------------------------------
# New York 2026: spring forward on 8 March at 02:00 EST (07:00 UTC) to 03:00 EDT; fall back on 1 November at
# 02:00 EDT (06:00 UTC) to 01:00 EST, so 01:00-02:00 happens twice. Berlin 2026: spring forward on 29 March at
# 02:00 CET (01:00 UTC) to 03:00 CEST; fall back on 25 October at 03:00 CEST (01:00 UTC) to 02:00 CET.

@pytest.mark.parametrize(
    ("zone", "quiet", "not_before", "expected"),
    [
        # quiet hours end at 02:30, which does not exist that night: first valid instant after the gap, 03:00 EDT
        ("America/New_York", ("21:00", "02:30"), datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK), utc(2026, 3, 8, 7, 0)),
        # ... ending exactly at the skipped 02:00
        ("America/New_York", ("00:00", "02:00"), datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK), utc(2026, 3, 8, 7, 0)),
        # quiet hours lie across the gap: 01:30 EST to 02:30 (nonexistent)
        ("America/New_York", ("01:30", "02:30"), datetime(2026, 3, 8, 1, 45, tzinfo=NEW_YORK),
         utc(2026, 3, 8, 7, 0)),
        # quiet hours end at 03:00 EDT, which exists: 07:00 UTC as well
        ("America/New_York", ("01:00", "03:00"), datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK),
         utc(2026, 3, 8, 7, 0)),
        # the only allowed time of day (02:00-03:00) does not exist that day: 02:00 EDT the next day
        ("America/New_York", ("03:00", "02:00"), datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK),
         utc(2026, 3, 9, 6, 0)),
        # ambiguous end of quiet hours: the first occurrence (01:30 EDT)
        ("America/New_York", ("22:00", "01:30"), datetime(2026, 10, 31, 23, 0, tzinfo=NEW_YORK),
         utc(2026, 11, 1, 5, 30)),
        # already in the second pass of 01:00-02:00 (01:10 EST): its 01:30 EST is the earliest allowed instant
        ("America/New_York", ("00:00", "01:30"), datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NEW_YORK),
         utc(2026, 11, 1, 6, 30)),
        # quiet 01:30-07:00 and the clock falls back from 01:59 EDT to 01:00 EST, outside quiet hours again
        ("America/New_York", ("01:30", "07:00"), datetime(2026, 11, 1, 1, 45, tzinfo=NEW_YORK),
         utc(2026, 11, 1, 6, 0)),
        # Berlin: quiet hours end at the nonexistent 02:30 -> 03:00 CEST
        ("Europe/Berlin", ("22:00", "02:30"), datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN), utc(2026, 3, 29, 1, 0)),
        # Berlin: quiet hours span the gap, from 01:00 CET to 04:00 CEST
        ("Europe/Berlin", ("01:00", "04:00"), datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN), utc(2026, 3, 29, 2, 0)),
        # Berlin: ambiguous 02:30 -> first occurrence, 02:30 CEST
        ("Europe/Berlin", ("20:00", "02:30"), datetime(2026, 10, 24, 21, 0, tzinfo=BERLIN),
         utc(2026, 10, 25, 0, 30)),
        # Berlin: already in the second 02:00-03:00 (02:10 CET): 02:30 CET
        ("Europe/Berlin", ("00:00", "02:30"), datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN),
         utc(2026, 10, 25, 1, 30)),
    ],
)
def test_daylight_saving_gaps_and_overlaps(zone, quiet, not_before, expected):
    plan = window(zone, quiet)
    result = next_send_time(plan, not_before)
    assert result == expected, result.astimezone(ZoneInfo(zone)).isoformat()
    assert allowed(result, plan)


def test_a_send_inside_the_gap_itself_moves_to_the_first_valid_instant():
    # 02:15 on 8 March does not exist in New York; zoneinfo reads it (fold=0) as 03:15 EDT. Quiet hours
    # 02:00-02:45 cannot apply to a time that never shows on the clock, so it is sent as is.
    plan = window("America/New_York", ("02:00", "02:45"))
    not_before = datetime(2026, 3, 8, 2, 15, tzinfo=NEW_YORK)
    assert next_send_time(plan, not_before) == utc(2026, 3, 8, 7, 15)


def test_overlap_with_no_quiet_hours_keeps_the_instant():
    plan = window("Europe/Berlin")
    second_pass = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    assert next_send_time(plan, second_pass) == utc(2026, 10, 25, 1, 30)


# --- quiet hours and send days --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("local", "expected_local"),
    [
        (datetime(2026, 5, 5, 23, 0), datetime(2026, 5, 6, 7, 30)),  # Tuesday night -> Wednesday 07:30
        (datetime(2026, 5, 6, 6, 0), datetime(2026, 5, 6, 7, 30)),  # early morning -> same day 07:30
        (datetime(2026, 5, 6, 21, 0), datetime(2026, 5, 7, 7, 30)),  # start is inclusive
        (datetime(2026, 5, 6, 7, 30), datetime(2026, 5, 6, 7, 30)),  # end is exclusive
        (datetime(2026, 5, 6, 20, 59), datetime(2026, 5, 6, 20, 59)),
        (datetime(2026, 5, 6, 0, 0), datetime(2026, 5, 6, 7, 30)),
    ],
)
def test_quiet_hours_wrapping_midnight(local, expected_local):
    plan = window("America/New_York", ("21:00", "07:30"))
    result = next_send_time(plan, local.replace(tzinfo=NEW_YORK))
    assert result == expected_local.replace(tzinfo=NEW_YORK).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "expected_local"),
    [
        (datetime(2026, 5, 6, 12, 30), datetime(2026, 5, 6, 13, 0)),
        (datetime(2026, 5, 6, 12, 0), datetime(2026, 5, 6, 13, 0)),
        (datetime(2026, 5, 6, 11, 59), datetime(2026, 5, 6, 11, 59)),
        (datetime(2026, 5, 6, 13, 0), datetime(2026, 5, 6, 13, 0)),
    ],
)
def test_quiet_hours_within_one_day(local, expected_local):
    plan = window("Europe/Berlin", ("12:00", "13:00"))
    result = next_send_time(plan, local.replace(tzinfo=BERLIN))
    assert result == expected_local.replace(tzinfo=BERLIN).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "expected_local"),
    [
        (datetime(2026, 5, 1, 22, 0), datetime(2026, 5, 4, 7, 30)),  # Friday night -> Monday 07:30
        (datetime(2026, 5, 2, 12, 0), datetime(2026, 5, 4, 7, 30)),  # Saturday noon -> Monday 07:30
        (datetime(2026, 5, 3, 23, 59), datetime(2026, 5, 4, 7, 30)),  # Sunday 23:59 -> Monday 07:30
        (datetime(2026, 5, 1, 20, 0), datetime(2026, 5, 1, 20, 0)),  # Friday evening: allowed
    ],
)
def test_send_days_skip_the_weekend_in_the_example_plan(local, expected_local):
    plan = parse_plan(json.loads(EXAMPLE_PATH.read_text()))  # Los Angeles, 21:00-07:30, Monday to Friday
    zone = ZoneInfo("America/Los_Angeles")
    result = next_send_time(plan, local.replace(tzinfo=zone))
    assert result == expected_local.replace(tzinfo=zone).astimezone(UTC)


def test_send_days_without_quiet_hours_start_at_local_midnight():
    plan = window("Asia/Kolkata", None, ["wed"])
    not_before = datetime(2026, 5, 7, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))  # a Thursday
    assert next_send_time(plan, not_before) == datetime(2026, 5, 13, 0, 0, tzinfo=ZoneInfo("Asia/Kolkata"))


def test_day_is_the_local_day_not_the_utc_day():
    # Monday 01:00 in Auckland is still Sunday in UTC; a Monday-only plan allows it.
    plan = window("Pacific/Auckland", None, ["mon"])
    local = datetime(2026, 5, 4, 1, 0, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert local.astimezone(UTC).weekday() == 6
    assert next_send_time(plan, local) == local


# --- inputs and outputs ---------------------------------------------------------------------------------------------

def test_naive_not_before_is_rejected():
    with pytest.raises(ValueError, match="aware"):
        next_send_time(window("UTC"), datetime(2026, 5, 6, 12, 0))


def test_result_is_utc_whatever_the_input_zone():
    result = next_send_time(window("UTC"), datetime(2026, 5, 6, 12, 0, 30, 500, tzinfo=BERLIN))
    assert result.tzinfo is UTC
    assert result == utc(2026, 5, 6, 10, 0, 30).replace(microsecond=500)


def test_plan_model_and_dict_give_the_same_answer():
    data = json.loads(EXAMPLE_PATH.read_text())
    not_before = utc(2026, 5, 2, 3, 0)
    assert next_send_time(parse_plan(data), not_before) == next_send_time(data, not_before)


@pytest.mark.parametrize(
    "plan",
    [{"timezone": "Mars/Base"}, {"timezone": "UTC", "sendDays": []}, {"timezone": "UTC", "sendDays": ["Mon"]},
     {"timezone": "UTC", "quietHours": {"start": "09:00", "end": "09:00"}}, {}],
)
def test_invalid_window_settings_raise_value_error(plan):
    with pytest.raises(ValueError):
        next_send_time(plan, utc(2026, 5, 6, 12, 0))
