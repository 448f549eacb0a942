"""`?format=csv` for the metrics answers: one line per metrics row, its section and keys first."""
from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer

from analytics.metrics import COLUMNS
from outreach.csv_safety import csv_lines


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) and "sent" in value and "bounce_rate" in value


# What names a row in some answer; empty where a row has no such key.
KEY_COLUMNS = ("period", "node_id", "plan_source", "campaign_id", "name", "sender_id", "from_email", "domain")


def csv_rows(data: dict) -> list[list[Any]]:
    """Every metrics block of an answer (totals, each row of each list) as a line."""
    rows: list[list[Any]] = [["section", *KEY_COLUMNS, *COLUMNS]]
    for section, value in data.items():
        blocks = [value] if _is_block(value) else [v for v in value if _is_block(v)] if isinstance(value, list) else []
        for block in blocks:
            rows.append([section, *(block.get(k, "") for k in KEY_COLUMNS), *(block[c] for c in COLUMNS)])
    return rows


class MetricsCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if not isinstance(data, dict):
            return b""
        return "".join(csv_lines(csv_rows(data))).encode()
