"""What the simulator answers over HTTP: a status, a body, headers, and the faults' delay or dropped reply."""
from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    drop: bool = False  # close the connection without answering (after the request was read)
    delay: float = 0.0  # real seconds to sleep before answering


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, json.dumps(data).encode("utf-8"), {"Content-Type": "application/json", **(headers or {})}
    )


def error_response(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None):
    return json_response(status, {"errors": [{"message": message, "field": field, "help": None}]}, headers)
