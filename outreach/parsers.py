"""The REST API's JSON parser: DRF's, plus a nesting limit, and a failure that names the body.

Python's json parser recurses once per nesting level: a body of about 1,000 nested arrays raised
RecursionError, a 500. No request of this API nests deeper than a handful of levels (a plan is the deepest,
well under 20), so anything past API_JSON_MAX_DEPTH is refused as a 400 before a serializer sees it.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

BODY_FIELD = "body"


def json_depth_exceeds(data: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: deep input cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def body_parse_error(message: str) -> ParseError:
    """A 400 in the one error shape whose `errors` name the request body."""
    return ParseError({BODY_FIELD: [message]})


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.API_JSON_MAX_DEPTH
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise body_parse_error(f"JSON nested deeper than {limit} levels.") from exc
        except ParseError as exc:
            raise body_parse_error(str(exc.detail)) from exc
        if json_depth_exceeds(data, limit):
            raise body_parse_error(f"JSON nested deeper than {limit} levels.")
        return data
