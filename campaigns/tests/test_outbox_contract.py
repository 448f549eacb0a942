"""The outbox table contract (campaigns.services.outbox) still matches messaging's model of the table.

campaigns writes `outbound_messages` rows in raw SQL without importing messaging; this test is where the
two meet. It reads the model through the app registry (tests only), so a column renamed, dropped or retyped
in messaging, or a NOT NULL column added that the INSERT would leave empty, fails here, not in production.
"""
from __future__ import annotations

from django.apps import apps
from django.db import connection
from django.db.models.fields import NOT_PROVIDED

from campaigns.services.outbox import OUTBOX_CANCELED, OUTBOX_COLUMNS, OUTBOX_QUEUED, OUTBOX_TABLE


def _outbox_model():
    return apps.get_model("messaging", "OutboundMessage")


def _columns() -> dict[str, object]:
    return {f.column: f for f in _outbox_model()._meta.concrete_fields}


def test_the_outbox_table_is_messagings_outbound_message():
    assert _outbox_model()._meta.db_table == OUTBOX_TABLE


def test_every_column_the_contract_writes_exists_with_the_same_type():
    columns = _columns()
    missing = [name for name, _ in OUTBOX_COLUMNS if name not in columns]
    assert missing == [], f"OutboundMessage lacks columns the outbox contract writes: {missing}"
    retyped = {name: (kind, columns[name].db_type(connection)) for name, kind in OUTBOX_COLUMNS
               if columns[name].db_type(connection) != kind}
    assert retyped == {}, f"(contract type, model type) differ: {retyped}"


def test_every_not_null_column_without_a_database_default_is_written_by_the_contract():
    written = {name for name, _ in OUTBOX_COLUMNS}
    left_empty = [column for column, f in _columns().items()
                  if not f.primary_key and not f.null and f.db_default is NOT_PROVIDED
                  and column not in written]
    assert left_empty == [], f"the outbox INSERT would leave these NOT NULL columns empty: {left_empty}"


def test_the_statuses_the_contract_writes_are_outbox_statuses():
    statuses = set(_outbox_model().Status.values)
    assert {OUTBOX_QUEUED, OUTBOX_CANCELED} <= statuses
