"""ISO 8601 durations as the plan DSL uses them (`PT30M`, `P3D`, `P1W`, `P1DT2H`).

Only units of fixed length are accepted: weeks, days, hours, minutes and seconds.
Years and months are rejected because their length depends on the calendar (a
"month" wait started on 31 January has no single meaning), and the DSL's timers
measure elapsed real time. A day is always exactly 24 hours here, also across a
daylight-saving change.

Grammar (upper-case designators, non-negative integers, no fractions, no sign,
no surrounding spaces):

    P<n>W                       weeks alone, as ISO 8601 requires
    P[<n>D][T[<n>H][<n>M][<n>S]] at least one component; "T" needs a time component

The DSL's bounds (1 minute to 90 days) are not checked by `parse_duration`; the
plan validator applies them with `duration_bounds_problem` so that it can name
the path of the offending value.
"""
from __future__ import annotations

import re
from datetime import timedelta

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=90)

# Anchored with \Z rather than $ so that a trailing newline is not accepted.
_WEEKS_RE = re.compile(r"P(?P<weeks>\d+)W\Z")
_DHMS_RE = re.compile(
    r"P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?\Z"
)
# The full ISO 8601 grammar (with years, months and mixed weeks), used only to give precise messages.
_FULL_RE = re.compile(r"P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?\Z")

# Regex for the JSON Schema: the same language as the two patterns above.
# No lookaheads, since structured-output engines support only a simple regex dialect.
_TIME_PATTERN = r"T(?:\d+H(?:\d+M)?(?:\d+S)?|\d+M(?:\d+S)?|\d+S)"
DURATION_PATTERN = rf"^P(?:\d+W|\d+D(?:{_TIME_PATTERN})?|{_TIME_PATTERN})$"

# Guards against absurd inputs such as "P99999999999999D" that would overflow timedelta.
_MAX_PARSEABLE = timedelta(days=999_999)


def parse_duration(text: str) -> timedelta:
    """Return the `timedelta` for an ISO 8601 duration; `ValueError` with a clear message otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string such as 'PT30M' or 'P3D', not {type(text).__name__}")
    if not text:
        raise ValueError("duration is empty; use ISO 8601 such as 'PT30M', 'P3D' or 'P1W'")
    if text != text.strip():
        raise ValueError(f"duration {text!r} has surrounding whitespace")
    if text.startswith("-"):
        raise ValueError(f"duration {text!r} is negative; durations must be positive")
    if text != text.upper() and (_WEEKS_RE.match(text.upper()) or _DHMS_RE.match(text.upper())):
        raise ValueError(f"duration {text!r} must use upper-case designators, e.g. {text.upper()!r}")

    match = _WEEKS_RE.match(text) or _DHMS_RE.match(text)
    if match and text not in ("P", "PT") and not text.endswith("T"):
        parts = {key: int(value) for key, value in match.groupdict().items() if value is not None}
        try:
            value = timedelta(**parts)
        except OverflowError:
            value = timedelta.max
        return _bounded(text, value)

    if re.search(r"[.,]", text):
        raise ValueError(f"duration {text!r} has a fraction; use whole numbers, e.g. 'PT90M' instead of 'PT1.5H'")
    if _FULL_RE.match(text):
        date_part = text.partition("T")[0]
        if "Y" in date_part or "M" in date_part:
            raise ValueError(
                f"duration {text!r} uses years or months, whose length varies; use days or weeks instead (e.g. 'P30D')"
            )
        if "W" in date_part:
            raise ValueError(f"duration {text!r} combines weeks with other units; use days instead (e.g. 'P9D')")
    raise ValueError(
        f"duration {text!r} is not an ISO 8601 duration; expected e.g. 'PT30M', 'PT2H', 'P3D', 'P1DT12H' or 'P1W'"
    )


def _bounded(text: str, value: timedelta) -> timedelta:
    # timedelta itself accepts up to 999,999,999 days; this keeps error messages sane for garbage input.
    if value > _MAX_PARSEABLE:
        raise ValueError(f"duration {text!r} is far too long")
    return value


def duration_bounds_problem(value: timedelta) -> str | None:
    """The DSL's rule (1 minute to 90 days, inclusive), as a message, or None when the value is within it."""
    if value < MIN_DURATION:
        return f"must be at least 1 minute (PT1M), got {format_duration(value)}"
    if value > MAX_DURATION:
        return f"must be at most 90 days (P90D), got {format_duration(value)}"
    return None


def duration_problem(text: object) -> str | None:
    """Everything wrong with a DSL duration value (syntax, then bounds), or None when it is acceptable."""
    try:
        value = parse_duration(text)  # type: ignore[arg-type]
    except ValueError as exc:
        return str(exc)
    return duration_bounds_problem(value)


def format_duration(value: timedelta) -> str:
    """The canonical ISO 8601 text for a timedelta (whole seconds), e.g. 'P1DT2H', 'PT30M', 'PT0S'."""
    total = int(value.total_seconds())
    if total < 0:
        return "-" + format_duration(-value)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{days}D" if days else ""
    time_part = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + ("T" + time_part if time_part else "")
