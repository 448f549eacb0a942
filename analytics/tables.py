"""The rollup tables as data: each one's bucket columns, unique key and which facts it keeps.

Upserting (rollups), recounting and comparing (recount) and deleting a range (rebuild) all read this one
description, so a table is declared once.
"""
from __future__ import annotations

from dataclasses import dataclass

# Column -> PostgreSQL type of the unnest() arrays the upserts bind.
COLUMN_TYPES = {"tenant_id": "bigint", "contact_id": "bigint", "campaign_id": "bigint", "sender_id": "bigint",
                "node_id": "text", "plan_source": "text", "domain": "text", "metric": "text",
                "hour": "timestamptz", "day": "date"}


@dataclass(frozen=True)
class RollupTable:
    name: str
    columns: tuple[str, ...]   # every key column, `tenant_id` first
    conflict: tuple[str, ...]  # the unique constraint's columns
    bucket: str                # "hour" or "day"
    # Facts whose `required` column holds its sentinel (no contact, no campaign...) are not kept here.
    required: str | None = None
    sentinel: int | str = 0

    def keeps_sql(self) -> str:
        return "true" if self.required is None else f"{self.required} <> {self.sentinel!r}"

    def keeps(self, fact: dict) -> bool:
        return self.required is None or fact[self.required] != self.sentinel


TABLES: tuple[RollupTable, ...] = (
    RollupTable("metrics_contact_hourly", ("tenant_id", "contact_id", "campaign_id", "hour", "metric"),
                ("contact_id", "campaign_id", "hour", "metric"), "hour", "contact_id"),
    RollupTable("metrics_campaign_daily",
                ("tenant_id", "campaign_id", "day", "node_id", "plan_source", "sender_id", "metric"),
                ("campaign_id", "day", "node_id", "plan_source", "sender_id", "metric"), "day", "campaign_id"),
    RollupTable("metrics_tenant_daily", ("tenant_id", "day", "metric"), ("tenant_id", "day", "metric"),
                "day"),
    RollupTable("metrics_sender_daily", ("tenant_id", "day", "sender_id", "metric"),
                ("tenant_id", "day", "sender_id", "metric"), "day", "sender_id"),
    RollupTable("metrics_domain_daily", ("tenant_id", "day", "domain", "metric"),
                ("tenant_id", "day", "domain", "metric"), "day", "domain", ""),
)

