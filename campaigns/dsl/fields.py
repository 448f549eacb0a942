"""Field types of the plan language: ids, times, durations, time zones, one-line and non-blank text.

Each check raises a pydantic custom error, so the shape pass reports the problem at its path.
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
)
from pydantic_core import PydanticCustomError

from campaigns.dsl.vocabulary import (
    HHMM_PATTERN,
    NODE_ID_PATTERN,
)
from campaigns.durations import DURATION_PATTERN, duration_problem
from outreach.timezones import timezone_problem

# --- field types ------------------------------------------------------------------------------------------------

def _fail(message: str) -> PydanticCustomError:
    # The message goes through the context so that braces in user input cannot break the template.
    return PydanticCustomError("plan_rule", "{message}", {"message": message})


_NODE_ID_RE = re.compile(r"[a-z0-9_-]{1,64}\Z")
_HHMM_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\Z")
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _check_node_id(value: str) -> str:
    if not _NODE_ID_RE.match(value):
        raise _fail(f"node id {value!r} must be 1 to 64 characters of a-z, 0-9, '_' or '-'")
    return value


def _check_hhmm(value: str) -> str:
    if not _HHMM_RE.match(value):
        raise _fail(f"{value!r} is not a 24-hour time HH:MM between 00:00 and 23:59")
    return value


def _check_duration(value: str) -> str:
    problem = duration_problem(value)
    if problem:
        raise _fail(problem)
    return value


def _check_timezone(value: str) -> str:
    # The one time-zone rule (outreach.timezones): contacts and plans accept the same names.
    problem = timezone_problem(value)
    if problem:
        raise _fail(problem)
    return value


def _check_one_line(value: str) -> str:
    if any(ch in _LINE_BREAKS for ch in value):
        raise _fail("must be a single line (no line breaks)")
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise _fail("must not be blank")
    return value


def _check_send_days(value: list[str]) -> list[str]:
    if not value:
        raise _fail("must name at least one day (leave sendDays out to allow every day)")
    seen: set[str] = set()
    for day in value:
        if day in seen:
            raise _fail(f"{day!r} is listed twice")
        seen.add(day)
    return value


NodeId = Annotated[str, AfterValidator(_check_node_id), Field(json_schema_extra={"pattern": NODE_ID_PATTERN})]
NodeRef = Annotated[str, Field(description="id of a node of this plan")]
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(
        description="ISO 8601 duration between PT1M and P90D, e.g. PT30M, P3D, P1W, P1DT12H",
        json_schema_extra={"pattern": DURATION_PATTERN},
    ),
]
HHMM = Annotated[str, AfterValidator(_check_hhmm), Field(json_schema_extra={"pattern": HHMM_PATTERN})]


def _text(min_length: int, max_length: int, *, one_line: bool = False) -> Any:
    # Length first (clear pydantic message about characters), then content rules.
    checks = [AfterValidator(_check_one_line)] if one_line else []
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length), *checks, AfterValidator(_check_not_blank)
    ]
