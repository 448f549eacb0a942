"""Issue 11: migration 0007 moves existing sender identities off the reply_to their tenant chose and onto the
tenant's issued reply address (applied with Django's MigrationExecutor on rows created at 0006)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from messaging.inbound.reply_addresses import tenant_reply_address

BEFORE = [("messaging", "0006_inbound_review_reason")]
AFTER = [("messaging", "0007_senders_issued_reply_addresses")]

pytestmark = pytest.mark.django_db(transaction=True)


def migrate_to(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0006():
    apps = migrate_to(BEFORE)
    yield apps
    migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())


def old_senders(apps):
    tenants = apps.get_model("tenancy", "Tenant")
    identities = apps.get_model("messaging", "EmailSenderIdentity")
    a = tenants.objects.create(name="A", slug="tenant-a")
    b = tenants.objects.create(name="B", slug="tenant-b")
    stolen = identities.objects.create(tenant=a, from_email="rep@a.example", reply_to="replies@b.example")
    chosen = identities.objects.create(tenant=b, from_email="rep@b.example", reply_to="replies@b.example")
    empty = identities.objects.create(tenant=b, from_email="ops@b.example", reply_to="")
    return identities, {"stolen": (stolen.pk, a.pk), "chosen": (chosen.pk, b.pk), "empty": (empty.pk, b.pk)}


def test_old_senders_get_their_tenants_issued_reply_address(at_0006, settings):
    settings.INBOUND_REPLY_DOMAIN = "in.seller.example"
    _, rows = old_senders(at_0006)

    identities = migrate_to(AFTER).get_model("messaging", "EmailSenderIdentity")

    for pk, tenant_id in rows.values():
        reply_to = identities.objects.get(pk=pk).reply_to
        assert reply_to == tenant_reply_address(tenant_id=tenant_id)
        assert reply_to.startswith(f"reply+{tenant_id}-") and reply_to.endswith("@in.seller.example")


def test_without_an_inbound_domain_nothing_changes_and_the_migration_reverses(at_0006, settings):
    settings.INBOUND_REPLY_DOMAIN = ""
    _, rows = old_senders(at_0006)

    identities = migrate_to(AFTER).get_model("messaging", "EmailSenderIdentity")
    assert identities.objects.get(pk=rows["stolen"][0]).reply_to == "replies@b.example"

    identities = migrate_to(BEFORE).get_model("messaging", "EmailSenderIdentity")  # one-way: a no-op back
    assert identities.objects.get(pk=rows["chosen"][0]).reply_to == "replies@b.example"
