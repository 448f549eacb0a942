"""When may a send go out? Quiet hours, send days and daylight-saving time (docs/plan-dsl.md, "Time").

The rule is about the local wall clock *at the instant of sending*: an instant is allowed when, in the
plan's time zone, its weekday is in `sendDays` and its time of day is outside `quietHours`
(`start` inclusive, `end` exclusive; the window wraps midnight when start > end).

`next_send_time` returns the earliest allowed instant at or after `not_before`. Seen as a set of
instants, the allowed time is a union of half-open intervals, and each interval starts either at a
wall-clock boundary (midnight of an allowed day, the end of quiet hours) or at a UTC-offset change,
where the local clock jumps. So the answer is `not_before` itself or one of those candidate instants;
we list them for the next days and take the first allowed one. This gives the spec's DST behaviour:

- a boundary that falls in a gap (e.g. quiet hours ending at 02:30 on a spring-forward night) is
  reached at the first valid instant after the gap (03:00 new time);
- a boundary that happens twice in an overlap is reached at its first occurrence, unless
  `not_before` is already past it, in which case the second occurrence is the earliest allowed one.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.dsl import WEEKDAYS, Plan, QuietHours
from outreach.timezones import is_iana_timezone

# Days of candidates looked at per round; the allowed set recurs weekly, so 8 days find an answer
# unless DST swallows the whole allowed window of the only allowed day (then the next round does).
_ROUND_DAYS = 8
_MAX_ROUNDS = 6
# Offset changes are searched by sampling at this step and bisecting; tz rules never change twice so close.
_OFFSET_SAMPLE = timedelta(hours=3)
_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class SendWindow:
    """The part of a plan that decides when sends may happen."""

    zone: ZoneInfo
    quiet_start: time | None
    quiet_end: time | None
    weekdays: frozenset[int]  # datetime.weekday() numbers

    def allows_wall_time(self, local: datetime) -> bool:
        """Whether a local wall-clock time (naive or aware in `zone`) is outside quiet hours on an allowed day."""
        if local.weekday() not in self.weekdays:
            return False
        if self.quiet_start is None or self.quiet_end is None:
            return True
        tod = local.time().replace(tzinfo=None)
        if self.quiet_start < self.quiet_end:
            return not (self.quiet_start <= tod < self.quiet_end)
        return self.quiet_end <= tod < self.quiet_start

    def allows(self, instant: datetime) -> bool:
        """Whether a send may happen at this aware instant."""
        return self.allows_wall_time(instant.astimezone(self.zone))

    def interval_starts(self, day: date) -> Iterable[time]:
        """Local times of day at which an allowed interval of `day` begins (may not exist on a DST day)."""
        if day.weekday() not in self.weekdays:
            return ()
        if self.quiet_start is None or self.quiet_end is None:
            return (_MIDNIGHT,)
        if self.quiet_start < self.quiet_end:
            return (_MIDNIGHT, self.quiet_end) if self.quiet_start != _MIDNIGHT else (self.quiet_end,)
        return (self.quiet_end,)


def send_window(plan: Plan | Mapping[str, Any]) -> SendWindow:
    """The `SendWindow` of a parsed plan, or of a plan dict (only timezone, quietHours and sendDays are read)."""
    if isinstance(plan, Plan):
        quiet = plan.quiet_hours
        return _window(
            plan.timezone,
            quiet.start if quiet else None,
            quiet.end if quiet else None,
            tuple(plan.send_days) if plan.send_days else None,
        )
    if not isinstance(plan, Mapping):
        raise TypeError(f"plan must be a Plan or a dict, not {type(plan).__name__}")
    quiet_raw = plan.get("quietHours")
    start = end = None
    if quiet_raw is not None:
        # Reuse the DSL's own checks so that a bad dict fails the same way a bad plan does.
        quiet_model = QuietHours.model_validate(quiet_raw)
        start, end = quiet_model.start, quiet_model.end
    days = plan.get("sendDays")
    if days is not None:
        if not isinstance(days, (list, tuple)) or not days or any(day not in WEEKDAYS for day in days):
            raise ValueError(f"sendDays must be a non-empty list of {', '.join(WEEKDAYS)}; got {days!r}")
        days = tuple(days)
    return _window(plan.get("timezone"), start, end, days)


@lru_cache(maxsize=256)
def _window(zone_name: Any, start: str | None, end: str | None, days: tuple[str, ...] | None) -> SendWindow:
    if not isinstance(zone_name, str) or not is_iana_timezone(zone_name):
        raise ValueError(f"timezone {zone_name!r} is not an IANA time zone name")
    return SendWindow(
        zone=ZoneInfo(zone_name),
        quiet_start=time.fromisoformat(start) if start else None,
        quiet_end=time.fromisoformat(end) if end else None,
        weekdays=frozenset(WEEKDAYS.index(day) for day in (days or WEEKDAYS)),
    )


def send_time_allowed(*, plan: Plan | Mapping[str, Any] | None, instant: datetime) -> bool:
    """Whether the plan's quiet hours and send days allow a send at this aware instant (no plan: always).

    For delivery's last look at a send that waited (rate limits, holds, a backlog): policy beats plans, and
    the window is part of the plan's promise, so a send whose moment passed into quiet hours is held.
    """
    if plan is None:
        return True
    try:
        window = send_window(plan)
    except (TypeError, ValueError):
        return True  # no usable window (a plan stored before the DSL required one): nothing to keep
    return window.allows(instant)


def next_send_time(plan: Plan | Mapping[str, Any], not_before: datetime) -> datetime:
    """The earliest instant at or after `not_before` at which the plan allows a send, as an aware UTC datetime.

    `not_before` must be aware (ValueError otherwise); it is returned unchanged (in UTC) when already allowed.
    """
    if not_before.tzinfo is None or not_before.utcoffset() is None:
        raise ValueError("not_before must be an aware datetime (with a time zone), got a naive one")
    window = send_window(plan)
    start = not_before.astimezone(UTC)
    if window.allows(start):
        return start

    round_start = start
    for _ in range(_MAX_ROUNDS):
        round_end = round_start + timedelta(days=_ROUND_DAYS)
        found = _first_allowed_candidate(window, start, round_start, round_end)
        if found is not None:
            return found
        round_start = round_end
    raise RuntimeError(f"no allowed send time within {_ROUND_DAYS * _MAX_ROUNDS} days of {start.isoformat()}")


def _first_allowed_candidate(
    window: SendWindow, not_before: datetime, round_start: datetime, round_end: datetime
) -> datetime | None:
    zone = window.zone
    candidates: set[datetime] = set()
    # Local dates whose boundaries may fall in [round_start, round_end], with a day of margin for offsets.
    first_day = round_start.astimezone(zone).date() - timedelta(days=1)
    last_day = round_end.astimezone(zone).date() + timedelta(days=1)
    day = first_day
    while day <= last_day:
        for wall in window.interval_starts(day):
            candidates.update(_instants_of_wall_time(zone, datetime.combine(day, wall)))
        day += timedelta(days=1)
    candidates.update(_offset_changes(zone, round_start - timedelta(days=1), round_end + timedelta(days=1)))

    for candidate in sorted(c for c in candidates if c >= not_before):
        if window.allows(candidate):
            return candidate
    return None


def _instants_of_wall_time(zone: ZoneInfo, naive: datetime) -> list[datetime]:
    """Every UTC instant whose local time in `zone` is `naive`: none (gap), one, or two (overlap)."""
    found = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive:
            found.append(instant)
    return found


def _offset_changes(zone: ZoneInfo, begin: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [begin, end] at which `zone`'s UTC offset changes (the first instant of the new offset)."""
    changes = []
    previous = begin.replace(microsecond=0)  # whole seconds, so that bisection lands on the exact second
    previous_offset = previous.astimezone(zone).utcoffset()
    while previous < end:
        current = min(previous + _OFFSET_SAMPLE, end)
        current_offset = current.astimezone(zone).utcoffset()
        if current_offset != previous_offset:
            changes.append(_bisect_change(zone, previous, current, previous_offset))
        previous, previous_offset = current, current_offset
    return changes


def _bisect_change(zone: ZoneInfo, low: datetime, high: datetime, low_offset: timedelta | None) -> datetime:
    # Invariant: offset(low) == low_offset != offset(high); narrow to one-second resolution.
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + timedelta(seconds=1)
        if middle.astimezone(zone).utcoffset() == low_offset:
            low = middle
        else:
            high = middle
    return high
