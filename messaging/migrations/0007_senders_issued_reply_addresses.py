"""Existing sender identities move to their tenant's issued reply address (issue 11).

Identities created before reply addresses were issued by the system kept the reply_to their tenant chose, which
could be another tenant's address or the inbound domain: replies were then filed under the wrong tenant. With
INBOUND_REPLY_DOMAIN set, every identity's reply_to becomes reply+<tenant>-<HMAC>@INBOUND_REPLY_DOMAIN
(messaging.inbound.reply_addresses), as new identities get. Without it there is nothing to issue and nothing
changes: set INBOUND_REPLY_DOMAIN before migrating (docs/sendgrid.md).

One-way: the chosen reply_to values are not kept, so reversing leaves the issued addresses in place (replies
still reach the tenant that owns them; that is the safe side). Only our rows change: each message's Reply-To
is taken from them at send time; the copy SendGrid keeps on its verified sender is not used for sending.
"""
from django.conf import settings
from django.db import migrations

from messaging.inbound.reply_addresses import tenant_reply_address


def issue_reply_addresses(apps, schema_editor) -> None:
    if not settings.INBOUND_REPLY_DOMAIN:
        return
    identities = apps.get_model("messaging", "EmailSenderIdentity")
    tenant_ids = identities.objects.values_list("tenant_id", flat=True).distinct().order_by("tenant_id")
    for tenant_id in tenant_ids.iterator():
        issued = tenant_reply_address(tenant_id=tenant_id)
        identities.objects.filter(tenant_id=tenant_id).exclude(reply_to=issued).update(reply_to=issued)


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0006_inbound_review_reason"),
    ]

    operations = [
        migrations.RunPython(issue_reply_addresses, reverse_code=migrations.RunPython.noop, elidable=False),
    ]
