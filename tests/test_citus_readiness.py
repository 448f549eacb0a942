"""Readiness to distribute by tenant (Citus): every tenant-owned table whose primary or unique keys lack
tenant_id is listed here with the reason, so a new one fails this test until someone decides.

Citus requires every primary and unique key of a distributed table to hold the distribution column. All
our primary keys are a surrogate `id` (Django's foreign keys need a one-column target); distributing adds
tenant_id to each of them (`(tenant_id, id)`) in the migration that distributes, one rule for every table
below. The unique keys and the tables without tenant_id are each decided below.
"""
from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

PROJECT_APPS = ("tenancy", "ai", "contacts", "campaigns", "messaging", "analytics", "webhooks_out")

# table -> why it has no tenant_id column, and what it is on Citus.
NOT_TENANT_OWNED = {
    "tenants": "the tenants themselves: a reference table (copied to every node)",
    "global_sending_switch": "one global row: a reference table",
    "webhook_attempts": "a child of webhook_deliveries_out: gets its delivery's tenant_id when distributed",
    "webhook_deliveries": "raw POSTs stored before anything knows the tenant: a local table on the coordinator",
    "webhook_payload_hashes": "dedupe of those raw POSTs: local on the coordinator with them",
    "metrics_message_firsts": "analytics' first human open / click per outbound message: gets its message's "
                              "tenant_id (key (tenant_id, message_id, kind)) when distributed",
}

# (table, unique key) -> why tenant_id is not in it, and what it becomes.
UNIQUE_KEY_EXCEPTIONS = {
    ("api_keys", "api_keys_prefix_key"): "the key names its tenant: looked up before the tenant is known "
                                         "(a reference table of key hashes)",
    ("api_keys", "api_keys_key_hash_key"): "the same lookup, by hash",
    ("webhook_events", "webhook_events_event_id_key"): "a random UUID given to integrators; becomes "
                                                       "(tenant_id, event_id)",
    ("webhook_deliveries_out", "uniq_whd_event_endpoint"): "both sides are one tenant's: add tenant_id",
    ("contact_channels", "uniq_contact_channel_value"): "the contact implies the tenant: add tenant_id",
    ("contact_campaigns", "uniq_contact_campaign_per_channel"): "the campaign implies the tenant: add tenant_id",
    ("campaign_plan_versions", "uniq_plan_version_number"): "the enrolment implies the tenant: add tenant_id",
    ("campaign_plan_versions", "uniq_plan_version_hash"): "the same",
    ("scheduled_actions", "scheduled_actions_dedupe_key_key"): "the key's text starts with the tenant id: "
                                                               "becomes (tenant_id, dedupe_key)",
    ("outbound_messages", "uniq_outbound_dedupe_key"): "the same: (tenant_id, dedupe_key)",
    ("outbound_messages", "uniq_outbound_message_id_header"): "a reply is matched by Message-ID before its "
                                                              "tenant is known: a lookup table on Citus",
    ("message_events", "uniq_message_event_dedupe_key"): "events are deduped before they are linked to a "
                                                         "tenant; unlinked ones would go to a local table",
    ("message_events", "uniq_provider_event_id"): "the same",
    ("metrics_contact_hourly", "uniq_metrics_contact_hourly"): "the contact implies the tenant: add tenant_id "
                                                                "(the rollup upserts name this key)",
    ("metrics_campaign_daily", "uniq_metrics_campaign_daily"): "the campaign implies the tenant: the same",
    ("inbound_messages", "inbound_messages_message_id_header_key"): "inbound mail is stored before its tenant "
                                                                    "is known: a lookup table on Citus",
}

_UNIQUE_KEYS_SQL = """
SELECT i.relname, ix.indisprimary,
       array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = ix.indrelid AND a.attnum = ANY(ix.indkey))
FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
WHERE ix.indrelid = to_regclass(%s) AND ix.indisunique
"""


def _project_tables() -> list[tuple[str, set[str]]]:
    return [(m._meta.db_table, {f.column for f in m._meta.concrete_fields})
            for m in apps.get_models() if m._meta.app_label in PROJECT_APPS and m._meta.managed]


@pytest.mark.django_db
def test_every_tenant_owned_key_without_tenant_id_is_a_listed_exception_with_its_reason():
    without_tenant = {table for table, columns in _project_tables() if "tenant_id" not in columns}
    offenders = set()
    with connection.cursor() as cursor:
        for table, columns in _project_tables():
            if "tenant_id" not in columns:
                continue
            cursor.execute(_UNIQUE_KEYS_SQL, [table])
            for name, primary, key_columns in cursor.fetchall():
                if "tenant_id" not in key_columns and not (primary and key_columns[0] == "id"):
                    offenders.add((table, name))
    assert without_tenant == set(NOT_TENANT_OWNED), "tables without tenant_id: decide and list them"
    assert offenders == set(UNIQUE_KEY_EXCEPTIONS), "unique keys without tenant_id: decide and list them"
    assert all(UNIQUE_KEY_EXCEPTIONS.values()) and all(NOT_TENANT_OWNED.values())
