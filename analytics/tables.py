"""The rollup tables as data: each one's bucket columns, unique key and which facts it keeps.

Upserting (rollups), recounting and comparing (recount) and deleting a range (rebuild) all read this one
description, so a table is declared once.
"""
from __future__ import annotations

from dataclasses import dataclass

# Key column -> PostgreSQL type of the unnest() arrays the upserts bind (every count column is bigint).
COLUMN_TYPES = {"tenant_id": "bigint", "contact_id": "bigint", "campaign_id": "bigint", "sender_id": "bigint",
                "node_id": "text", "plan_source": "text", "domain": "text", "hour": "timestamptz", "day": "date"}


@dataclass(frozen=True)
class RollupTable:
    name: str
    columns: tuple[str, ...]   # every key column, `tenant_id` first (then one column per count)
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
    RollupTable("metrics_contact_hourly", ("tenant_id", "contact_id", "campaign_id", "hour"),
                ("contact_id", "campaign_id", "hour"), "hour", "contact_id"),
    RollupTable("metrics_campaign_daily",
                ("tenant_id", "campaign_id", "day", "node_id", "plan_source", "sender_id"),
                ("campaign_id", "day", "node_id", "plan_source", "sender_id"), "day", "campaign_id"),
    RollupTable("metrics_tenant_daily", ("tenant_id", "day"), ("tenant_id", "day"),
                "day"),
    RollupTable("metrics_sender_daily", ("tenant_id", "day", "sender_id"),
                ("tenant_id", "day", "sender_id"), "day", "sender_id"),
    RollupTable("metrics_domain_daily", ("tenant_id", "day", "domain"),
                ("tenant_id", "day", "domain"), "day", "domain", ""),
)

