"""How deep a parsed JSON value nests: providers' payloads are flat, attackers' are not.

orjson refuses more than 1,024 levels, but 1,000 levels parse, and then any recursive step after
(Python's json, repr, orjson.dumps at 255 levels, jsonb) raises RecursionError or TypeError far from the
request. Webhooks refuse anything deeper than MAX_JSON_DEPTH with a 400 at the door.
"""
from __future__ import annotations

from typing import Any

import orjson

# A SendGrid event is an object of scalars, `category` sometimes a list, custom args sometimes a small object.
MAX_JSON_DEPTH = 32


def nesting_too_deep(value: Any, *, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` holds containers more than ``limit`` levels deep (an iterative walk: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            children = item.values()
        elif kind is list:
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


def json_loads_bounded(data: bytes | str, *, limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, refusing values nested deeper than ``limit``: ValueError (orjson.JSONDecodeError is one)."""
    value = orjson.loads(data)
    if nesting_too_deep(value, limit=limit):
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return value
