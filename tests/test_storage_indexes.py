"""The hot tables' indexes (docs/storage.md): each named query of the code reads the index meant for it, and
every index on those tables is one the document lists with the query it serves (no unlisted extras).

The planner is asked with sequential scans off: on a test's handful of rows it would rightly scan the table,
on millions it must not, and what it can use then is what an index offers.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.db import connection

from campaigns import dispatcher
from campaigns.api.selectors import contact_campaign_list
from campaigns.models import ScheduledAction
from messaging.api.messages import message_list
from messaging.delivery import recovery, unknown_bound
from messaging.inbound.selectors import replies_list
from messaging.models import MessageEvent
from outreach.testing import indexes_used, queryset_indexes_used

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
HOT_TABLES = ("message_events", "outbound_messages", "scheduled_actions", "webhook_deliveries",
              "campaign_transitions", "contact_campaigns", "inbound_messages")
STORAGE_DOC = Path(__file__).resolve().parent.parent / "docs" / "storage.md"


def test_the_dispatcher_claims_due_actions_through_the_pending_partial_index():
    sql = dispatcher._DUE_SQL.format(kinds="")
    assert indexes_used(sql, {"now": NOW, "limit": 1000}) == {"sa_pending_due"}


def test_the_fair_share_probe_reads_each_tenants_pending_sends_index():
    assert "sa_pending_send_tenant" in indexes_used(dispatcher._TENANTS_WITH_DUE_SENDS_SQL, [NOW])


def test_a_timer_is_found_by_its_dedupe_key_through_the_unique_index_not_a_like_twin():
    queryset = ScheduledAction.objects.filter(dedupe_key="t:1:2:n1:1:no_open")
    assert queryset_indexes_used(queryset) == {"scheduled_actions_dedupe_key_key"}


def test_the_api_enrolment_list_walks_its_cursor_order_index(tenant):
    page = contact_campaign_list(tenant=tenant).order_by("-created_at", "-id")[:50]
    assert "cc_tenant_created" in queryset_indexes_used(page)


def test_the_api_message_list_walks_its_cursor_order_index(tenant):
    page = message_list(tenant_id=tenant.id).order_by("-created_at", "-id")[:50]
    assert "om_tenant_created" in queryset_indexes_used(page)


def test_the_admin_event_list_of_one_type_in_one_tenant_reads_tenant_type_id(tenant):
    page = MessageEvent.objects.filter(tenant_id=tenant.id, event_type="spamreport").order_by("-id")[:50]
    assert queryset_indexes_used(page) == {"me_tenant_type_id"}


def test_the_soft_bounce_count_reads_the_bounce_partial_index(tenant):
    queryset = MessageEvent.objects.filter(event_type="bounce", bounce_type="soft", email__in=["a@x.example"],
                                           tenant_id__in=[tenant.id], occurred_at__gte=NOW)
    assert queryset_indexes_used(queryset) == {"me_bounce_email"}


def test_lost_outcome_recovery_reads_recently_settled_rows_by_status_and_time():
    params = {"status": "sent", "after_at": NOW, "after_id": 0, "until": NOW, "limit": 100}
    assert "om_status_updated" in indexes_used(recovery._LOST_EVENTS_SQL, params)


def test_the_unknown_bound_reads_unknown_rows_past_the_bound_by_status_and_time():
    params = {"cutoff": NOW, "limit": 500}
    assert indexes_used(unknown_bound._PAST_BOUND_SQL, params) == {"om_status_updated"}


def test_the_unknown_bound_checks_each_rows_acceptance_events_by_message_and_type():
    params = {"ids": [1, 2], "types": ["delivered"], "reason": "r", "now": NOW}
    assert "me_message_event" in indexes_used(unknown_bound._CLOSE_SQL, params)


def test_the_replies_inbox_reads_its_newest_first_index(tenant):
    page = replies_list(tenant_id=tenant.id).order_by("-received_at", "-id")[:50]
    assert "im_tenant_recent" in queryset_indexes_used(page)


def _indexes_of(table: str) -> set[str]:
    with connection.cursor() as cursor:
        # A partitioned table's indexes are declared on the parent; its partitions' copies are not listed.
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def test_every_index_on_the_hot_tables_is_listed_in_docs_storage_with_its_query():
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \| [a-z_]+ \|", STORAGE_DOC.read_text(), flags=re.MULTILINE))
    present = set().union(*(_indexes_of(table) for table in HOT_TABLES))
    assert present - listed == set(), "indexes without a line in docs/storage.md"
    assert listed - present == set(), "docs/storage.md lists indexes that do not exist"


def test_no_hot_table_keeps_a_like_pattern_index():
    present = set().union(*(_indexes_of(table) for table in HOT_TABLES))
    assert not [name for name in present if name.endswith("_like")]
