"""message_events by month of occurred_at, webhook_deliveries by week of received_at: native range partitions.

PostgreSQL wants every unique key of a partitioned table to hold the partition column, so the database's
primary keys become (id, occurred_at) and (id, received_at) while Django keeps `id` as the model's pk (ids
stay unique: one identity sequence feeds every partition). message_events' two dedupe keys gain
occurred_at, which keeps them exact (docs/storage.md); a repeated raw POST is caught by the new
webhook_payload_hashes table instead of a unique payload_hash. The tables are copied into their new form:
seconds on a dev or demo database, a maintenance window on a big one (docs/storage.md).
"""
from django.db import migrations, models
from django.utils import timezone

from outreach.partitioning import table_partition

EVENT_INDEXES = [
    'ALTER TABLE message_events ADD CONSTRAINT uniq_message_event_dedupe_key UNIQUE (dedupe_key, occurred_at)',
    "CREATE UNIQUE INDEX uniq_provider_event_id ON message_events (provider, provider_event_id, occurred_at) "
    "WHERE NOT (provider_event_id = '')",
    'CREATE INDEX me_message_event ON message_events (outbound_message_id, event_type)',
    'CREATE INDEX me_tenant_type_id ON message_events (tenant_id, event_type, id)',
    "CREATE INDEX me_bounce_email ON message_events (tenant_id, email, occurred_at) WHERE event_type = 'bounce'",
]
DELIVERY_INDEXES = [
    'CREATE INDEX wd_payload_hash ON webhook_deliveries (payload_hash)',
    "CREATE INDEX wd_pending_received ON webhook_deliveries (received_at) WHERE status = 'pending'",
    "CREATE INDEX wd_failed_received ON webhook_deliveries (received_at) WHERE status = 'failed'",
]


def partition(apps, schema_editor):
    now = timezone.now()
    with schema_editor.connection.cursor() as cursor:
        table_partition(cursor, table="message_events", primary_key=("id", "occurred_at"), now=now,
                        keep_periods=13)
        for sql in EVENT_INDEXES:
            cursor.execute(sql)
        table_partition(cursor, table="webhook_deliveries", primary_key=("id", "received_at"), now=now,
                        keep_periods=5)
        for sql in DELIVERY_INDEXES:
            cursor.execute(sql)
        # Repeats of the POSTs already stored stay caught.
        cursor.execute("INSERT INTO webhook_payload_hashes (payload_hash, received_at) "
                       "SELECT payload_hash, max(received_at) FROM webhook_deliveries GROUP BY payload_hash")


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ('messaging', '0006_index_diet'),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookPayloadHash',
            fields=[
                ('payload_hash', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('received_at', models.DateTimeField(db_index=True)),
            ],
            options={
                'db_table': 'webhook_payload_hashes',
            },
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name='messageevent', name='uniq_provider_event_id'),
                migrations.RemoveConstraint(model_name='messageevent', name='uniq_message_event_dedupe_key'),
                migrations.RemoveConstraint(model_name='webhookdelivery', name='uniq_webhook_payload_hash'),
                migrations.AlterField(
                    model_name='webhookdelivery',
                    name='payload_hash',
                    field=models.CharField(
                        help_text='SHA-256 of the raw body (a repeat is caught by WebhookPayloadHash)', max_length=64),
                ),
                migrations.AddIndex(
                    model_name='webhookdelivery',
                    index=models.Index(fields=['payload_hash'], name='wd_payload_hash'),
                ),
                migrations.AddConstraint(
                    model_name='messageevent',
                    constraint=models.UniqueConstraint(condition=models.Q(('provider_event_id', ''), _negated=True),
                                                       fields=('provider', 'provider_event_id', 'occurred_at'),
                                                       name='uniq_provider_event_id'),
                ),
                migrations.AddConstraint(
                    model_name='messageevent',
                    constraint=models.UniqueConstraint(fields=('dedupe_key', 'occurred_at'),
                                                       name='uniq_message_event_dedupe_key'),
                ),
            ],
            database_operations=[migrations.RunPython(partition)],
        ),
    ]
