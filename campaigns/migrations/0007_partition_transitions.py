"""campaign_transitions by month of created_at: native range partitions (docs/storage.md).

The database's primary key becomes (id, created_at) while Django keeps `id` as the model's pk; the foreign
keys to contact_campaigns and tenants are put back on the partitioned table under their old names. A copy
of the table: seconds on a dev or demo database, a maintenance window on a big one.
"""
from django.db import migrations
from django.utils import timezone

from outreach.partitioning import table_partition

AFTER = [
    "CREATE INDEX ct_cc_created ON campaign_transitions (contact_campaign_id, created_at)",
    "ALTER TABLE campaign_transitions ADD CONSTRAINT campaign_transitions_contact_campaign_id_4f10c469_fk_contact_c "
    "FOREIGN KEY (contact_campaign_id) REFERENCES contact_campaigns (id) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE campaign_transitions ADD CONSTRAINT campaign_transitions_tenant_id_97eaee88_fk_tenants_id "
    "FOREIGN KEY (tenant_id) REFERENCES tenants (id) DEFERRABLE INITIALLY DEFERRED",
]


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        table_partition(cursor, table="campaign_transitions", primary_key=("id", "created_at"),
                        now=timezone.now(), keep_periods=25)
        for sql in AFTER:
            cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0006_index_diet'),
    ]

    operations = [migrations.RunPython(partition)]
