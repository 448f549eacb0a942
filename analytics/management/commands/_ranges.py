"""The --from / --to arguments the analytics commands share."""
from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError, CommandParser

from analytics.recount import DayRange
from outreach import clock


def add_range_arguments(parser: CommandParser) -> None:
    parser.add_argument("--from", dest="first", help="First UTC date, YYYY-MM-DD (default: 30 days ago)")
    parser.add_argument("--to", dest="last", help="Last UTC date, inclusive, YYYY-MM-DD (default: today)")


def _date(value: str | None, name: str, default: dt.date) -> dt.date:
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def day_range(first: str | None, last: str | None) -> DayRange:
    today = clock.now().date()
    days = DayRange(_date(first, "from", today - dt.timedelta(days=30)), _date(last, "to", today))
    if days.last < days.first:
        raise CommandError("--to is before --from")
    return days
