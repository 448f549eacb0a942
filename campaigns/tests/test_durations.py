"""ISO 8601 durations of the plan DSL (campaigns/durations.py)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from campaigns.durations import (
    DURATION_PATTERN,
    MAX_DURATION,
    MIN_DURATION,
    duration_bounds_problem,
    duration_problem,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT1M", timedelta(minutes=1)),
        ("PT2H", timedelta(hours=2)),
        ("PT90S", timedelta(seconds=90)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
        ("PT2M30S", timedelta(minutes=2, seconds=30)),
        ("P3D", timedelta(days=3)),
        ("P1W", timedelta(weeks=1)),
        ("P12W", timedelta(weeks=12)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P1DT12H30M", timedelta(days=1, hours=12, minutes=30)),
        ("P90D", timedelta(days=90)),
        ("PT0S", timedelta(0)),  # syntactically fine; the DSL's bounds reject it separately
    ],
)
def test_parse_duration_accepts_fixed_length_units(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("P1Y", "years or months"),
        ("P2M", "years or months"),
        ("P1Y2M3D", "years or months"),
        ("P1M2DT3H", "years or months"),
        ("P1W2D", "combines weeks"),
        ("P1WT2H", "combines weeks"),
        ("PT1.5H", "fraction"),
        ("P0,5D", "fraction"),
        ("-P1D", "negative"),
        ("pt30m", "upper-case"),
        (" P1D", "whitespace"),
        ("P1D\n", "whitespace"),
        ("", "empty"),
        ("P", "not an ISO 8601 duration"),
        ("PT", "not an ISO 8601 duration"),
        ("P1DT", "not an ISO 8601 duration"),
        ("PT1H2", "not an ISO 8601 duration"),
        ("30 minutes", "not an ISO 8601 duration"),
        ("1D", "not an ISO 8601 duration"),
        ("P99999999999D", "far too long"),
    ],
)
def test_parse_duration_rejects_with_a_clear_message(text, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 30, 1.5, ["P1D"]])
def test_parse_duration_rejects_non_strings(value):
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(value)


@pytest.mark.parametrize(
    "text", ["PT30M", "P3D", "P1W", "P1DT2H", "PT45S", "P1Y", "P1W2D", "PT", "P", "P1DT", "pt1m", "PT1.5H", "-P1D"]
)
def test_json_schema_pattern_accepts_exactly_what_the_parser_accepts(text):
    try:
        parse_duration(text)
        parses = True
    except ValueError:
        parses = False
    assert bool(re.fullmatch(DURATION_PATTERN, text)) is parses


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (MIN_DURATION - timedelta(seconds=1), "at least 1 minute"),
        (timedelta(0), "at least 1 minute"),
        (MAX_DURATION + timedelta(seconds=1), "at most 90 days"),
        (timedelta(days=91), "at most 90 days"),
    ],
)
def test_duration_bounds_problem_rejects_outside_one_minute_to_ninety_days(value, fragment):
    assert fragment in duration_bounds_problem(value)


@pytest.mark.parametrize("value", [MIN_DURATION, timedelta(hours=5), MAX_DURATION])
def test_duration_bounds_problem_accepts_the_inclusive_bounds(value):
    assert duration_bounds_problem(value) is None


def test_duration_problem_combines_syntax_and_bounds():
    assert duration_problem("P3D") is None
    assert "at least 1 minute" in duration_problem("PT30S")
    assert "at most 90 days" in duration_problem("P13W")
    assert "years or months" in duration_problem("P1M")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=30), "PT30M"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(days=3), "P3D"),
        (timedelta(0), "PT0S"),
        (timedelta(hours=1, seconds=5), "PT1H5S"),
    ],
)
def test_format_duration_round_trips(value, text):
    assert format_duration(value) == text
    assert parse_duration(text) == value
