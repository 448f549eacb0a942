from django.db import migrations, models

# Leads that share a domain with an older lead of their tenant keep their data but lose the domain (noted
# in `notes`), so the constraint can be added to a database that already holds duplicates.
RELEASE_DUPLICATES = """
WITH ranked AS (
    SELECT id, domain, first_value(id) OVER (PARTITION BY tenant_id, domain ORDER BY id) AS keeper
    FROM leads WHERE domain <> ''
)
UPDATE leads l SET notes = trim(l.notes || E'\\n' || 'Domain ' || r.domain || ' removed: lead ' || r.keeper
                                || ' has it (one lead per domain).'),
                   domain = ''
FROM ranked r WHERE l.id = r.id AND r.id <> r.keeper
"""


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0004_one_contact_per_email'),
    ]

    operations = [
        migrations.RunSQL(RELEASE_DUPLICATES, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name='lead',
            constraint=models.UniqueConstraint(condition=models.Q(('domain', ''), _negated=True),
                                               fields=('tenant', 'domain'), name='uniq_lead_tenant_domain'),
        ),
    ]
