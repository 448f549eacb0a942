"""ai_calls by month of created_at: native range partitions (docs/storage.md), without the single-column tenant
index that ai_calls_tenant_created already leads with.

The database's primary key becomes (id, created_at) while Django keeps `id` as the model's pk; the foreign key
to tenants is put back under its old name. A copy of the table (small: one row per model call).
"""
import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

from outreach.partitioning import table_partition

AFTER = [
    "CREATE INDEX ai_calls_tenant_created ON ai_calls (tenant_id, created_at)",
    "ALTER TABLE ai_calls ADD CONSTRAINT ai_calls_tenant_id_c7c71f4c_fk_tenants_id "
    "FOREIGN KEY (tenant_id) REFERENCES tenants (id) DEFERRABLE INITIALLY DEFERRED",
]


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        table_partition(cursor, table="ai_calls", primary_key=("id", "created_at"), now=timezone.now(),
                        keep_periods=13)
        for sql in AFTER:
            cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('ai', '0003_verbose_names'),
        ('tenancy', '0004_idempotency_records'),
    ]

    operations = [
        migrations.AlterField(
            model_name='aicall',
            name='tenant',
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL, related_name='ai_calls',
                                    to='tenancy.tenant'),
        ),
        migrations.RunPython(partition),
    ]
