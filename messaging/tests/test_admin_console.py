"""The operator console for messaging: sender pause switches and SendGrid sync, and the do-not-contact list
(added through suppression_add, lifted through suppression_remove with a reason, CSV buttons wired)."""
from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from messaging.compliance import send_block_reason
from messaging.models import CommunicationSuppression, EmailSenderIdentity
from messaging.sendgrid.identities import sender_identity_create
from messaging.tests.factories import CommunicationSuppressionFactory, EmailSenderIdentityFactory
from outreach.tenancy.models import AuditEntry
from outreach.tenancy.tests.factories import UserFactory
from simulators.sendgrid.testing import closed_port_url, running_simulator

pytestmark = pytest.mark.django_db

SENDERS = "admin:messaging_emailsenderidentity_changelist"
SUPPRESSIONS = "admin:messaging_communicationsuppression_changelist"


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=2, sender_verify_delay_seconds=3600.0) as handle:
        yield handle




def _switch(obj, name: str) -> str:
    return reverse(f"admin:messaging_{obj._meta.model_name}_switch", args=[obj.pk, name])


def _last_message(response) -> str:
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


# --- sender identities ------------------------------------------------------------------------------------------

def test_pausing_senders_in_bulk_is_confirmed_then_audited_through_the_service(admin_client, admin_user):
    identity = EmailSenderIdentityFactory()

    confirm = admin_client.post(reverse(SENDERS), {"action": "pause_sending", "_selected_action": [identity.pk]})
    assert confirm.status_code == 200 and not EmailSenderIdentity.objects.get(pk=identity.pk).is_paused

    done = admin_client.post(reverse(SENDERS), {"action": "pause_sending", "_selected_action": [identity.pk],
                                                "post": "yes", "reason": "spam complaints"})

    assert done.status_code == 302
    assert EmailSenderIdentity.objects.get(pk=identity.pk).is_paused
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.tenant, entry.detail["reason"]) == (
        "sender.pause", admin_user, identity.tenant, "spam complaints")
    assert _last_message(done) == "Paused 1 email sender identity."


def test_resuming_a_sender_from_its_page_is_audited_and_the_form_cannot_flip_it(admin_client, admin_user):
    identity = EmailSenderIdentityFactory(is_paused=True)
    page = admin_client.get(reverse("admin:messaging_emailsenderidentity_change", args=[identity.pk]))
    body = page.content.decode()
    assert _switch(identity, "resume_sending") in body and _switch(identity, "pause_sending") not in body
    assert 'name="is_paused"' not in body and 'name="status"' not in body

    admin_client.post(reverse("admin:messaging_emailsenderidentity_change", args=[identity.pk]),
                      {"from_name": "New name", "reply_to": identity.reply_to, "nickname": "", "ip_pool": "",
                       "is_paused": "", "status": "failed"})
    identity.refresh_from_db()
    assert (identity.from_name, identity.is_paused, identity.status) == ("New name", True, "verified")

    admin_client.post(_switch(identity, "resume_sending"), {"reason": "warmed up"})

    assert not EmailSenderIdentity.objects.get(pk=identity.pk).is_paused
    assert AuditEntry.objects.get(action="sender.resume").actor == admin_user


def test_a_sender_added_in_the_admin_starts_pending_with_a_lower_cased_address(admin_client, tenant):
    response = admin_client.post(reverse("admin:messaging_emailsenderidentity_add"),
                                 {"tenant": tenant.pk, "from_email": "Sam@Seller.Example", "from_name": "Sam",
                                  "reply_to": "", "nickname": "", "ip_pool": "", "status": "verified"})

    assert response.status_code == 302, response.content.decode()[:2000]
    identity = EmailSenderIdentity.objects.get()
    assert (identity.from_email, identity.status) == ("sam@seller.example", "pending")


def test_the_sync_action_reads_verification_from_sendgrid(admin_client, sim, tenant):
    identity = sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam",
                                      reply_to="")
    unregistered = EmailSenderIdentityFactory(tenant=tenant, status="pending", provider_sender_id="")
    sim.verify_sender(int(identity.provider_sender_id))

    response = admin_client.post(reverse(SENDERS), {"action": "sync_with_sendgrid",
                                                    "_selected_action": [identity.pk, unregistered.pk]})

    assert response.status_code == 302
    assert _last_message(response) == "Synced 2 sender identities with SendGrid; 1 changed status."
    assert EmailSenderIdentity.objects.get(pk=identity.pk).status == "verified"
    assert EmailSenderIdentity.objects.get(pk=unregistered.pk).provider_sender_id  # registered now


def test_syncing_one_sender_from_its_page_is_confirmed_first(admin_client, sim, tenant):
    identity = sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam",
                                      reply_to="")
    sim.verify_sender(int(identity.provider_sender_id))

    assert admin_client.get(_switch(identity, "sync")).status_code == 200
    assert EmailSenderIdentity.objects.get(pk=identity.pk).status == "pending"

    admin_client.post(_switch(identity, "sync"))

    assert EmailSenderIdentity.objects.get(pk=identity.pk).status == "verified"


def test_sync_reports_an_unreachable_sendgrid_instead_of_failing(admin_client, settings):
    settings.SENDGRID_API_HOST = closed_port_url()
    identity = EmailSenderIdentityFactory(status="pending")

    bulk = admin_client.post(reverse(SENDERS), {"action": "sync_with_sendgrid", "_selected_action": [identity.pk]})
    one = admin_client.post(_switch(identity, "sync"))

    assert bulk.status_code == 302 and "SendGrid could not be asked" in _last_message(bulk)
    assert one.status_code == 302 and "SendGrid could not be asked" in _last_message(one)
    assert EmailSenderIdentity.objects.get(pk=identity.pk).status == "pending"


# --- the do-not-contact list ------------------------------------------------------------------------------------

def test_the_suppression_changelist_has_the_do_not_contact_csv_buttons(admin_client):
    body = admin_client.get(reverse(SUPPRESSIONS)).content.decode()

    assert reverse("admin:messaging_do_not_contact_import") in body
    assert reverse("admin:messaging_do_not_contact_export") in body


def test_a_suppression_added_in_the_admin_is_normalised_by_the_service_and_audited(admin_client, admin_user,
                                                                                   tenant):
    response = admin_client.post(reverse("admin:messaging_communicationsuppression_add"),
                                 {"tenant": tenant.pk, "channel": "email", "value": "  Dana@ACME.example ",
                                  "reason": "manual", "detail": "asked by phone", "expires_at": ""})

    assert response.status_code == 302, response.content.decode()[:2000]
    row = CommunicationSuppression.objects.get()
    assert (row.value, row.reason) == ("dana@acme.example", "manual")
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == "suppressed:manual"
    assert AuditEntry.objects.get(action="suppression.add").actor == admin_user


def test_an_invalid_address_is_a_form_error(admin_client, tenant):
    response = admin_client.post(reverse("admin:messaging_communicationsuppression_add"),
                                 {"tenant": tenant.pk, "channel": "email", "value": "not an address",
                                  "reason": "manual", "detail": "", "expires_at": ""})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["value"]
    assert not CommunicationSuppression.objects.exists()


def test_a_suppression_cannot_be_edited_or_deleted_only_lifted_with_a_reason(admin_client, admin_user, tenant):
    row = CommunicationSuppressionFactory(tenant=tenant, value="dana@acme.example", reason="hard_bounce")
    change_url = reverse("admin:messaging_communicationsuppression_change", args=[row.pk])

    assert 'name="_save"' not in admin_client.get(change_url).content.decode()
    assert admin_client.post(change_url, {"value": "other@acme.example"}).status_code == 403
    assert admin_client.post(reverse("admin:messaging_communicationsuppression_delete", args=[row.pk]),
                             {"post": "yes"}).status_code == 403

    no_reason = admin_client.post(_switch(row, "lift_suppressions"), {"reason": " "})
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()
    assert CommunicationSuppression.objects.filter(pk=row.pk).exists()

    lifted = admin_client.post(_switch(row, "lift_suppressions"), {"reason": "bounce was a provider outage"})

    assert lifted.status_code == 302 and lifted["Location"] == reverse(SUPPRESSIONS)
    assert not CommunicationSuppression.objects.filter(pk=row.pk).exists()
    entry = AuditEntry.objects.get(action="suppression.remove")
    assert (entry.actor, entry.detail["reason"]) == (admin_user, "bounce was a provider outage")


def test_lifting_in_bulk_needs_a_reason_too(admin_client, tenant):
    rows = CommunicationSuppressionFactory.create_batch(2, tenant=tenant, reason="manual")
    ids = [r.pk for r in rows]

    refused = admin_client.post(reverse(SUPPRESSIONS), {"action": "lift_suppressions", "_selected_action": ids,
                                                        "post": "yes"})
    assert refused.status_code == 200 and CommunicationSuppression.objects.count() == 2

    done = admin_client.post(reverse(SUPPRESSIONS), {"action": "lift_suppressions", "_selected_action": ids,
                                                     "post": "yes", "reason": "list cleaned"})

    assert _last_message(done) == "Lifted 2 communication suppressions."
    assert not CommunicationSuppression.objects.exists()
    assert AuditEntry.objects.filter(action="suppression.remove").count() == 2


def test_non_staff_users_reach_no_messaging_switch(client):
    identity = EmailSenderIdentityFactory()
    row = CommunicationSuppressionFactory()
    client.force_login(UserFactory(is_staff=False))

    for url in (_switch(identity, "pause_sending"), _switch(identity, "sync"), _switch(row, "lift_suppressions")):
        response = client.post(url, {"reason": "x"})
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert not EmailSenderIdentity.objects.get(pk=identity.pk).is_paused
    assert CommunicationSuppression.objects.filter(pk=row.pk).exists()
