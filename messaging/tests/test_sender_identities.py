"""Sender identities against the simulator's Verified Senders API, and the SendGrid client's error kinds."""
from __future__ import annotations

import socket

import pytest

from messaging.models import EmailSenderIdentity
from messaging.sendgrid import client as sg
from messaging.sendgrid.errors import SendGridErrorKind
from messaging.sendgrid.identities import (
    sender_identities_sync,
    sender_identity_create,
    sender_identity_set_paused,
    sender_identity_sync,
)
from messaging.simulator.server import start_simulator
from messaging.tasks import sync_sender_identities
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    handle = start_simulator(port=0, seed=2, auto_emit=False, sender_verify_delay_seconds=3600.0)
    settings.SENDGRID_API_HOST = handle.base_url
    yield handle
    handle.stop()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_create_registers_the_sender_with_sendgrid_and_starts_pending(sim, tenant):
    identity = sender_identity_create(tenant=tenant, from_email="Sam@Seller.example", from_name="Sam Seller",
                                      reply_to="", nickname="Sam")

    assert identity.from_email == "sam@seller.example" and identity.reply_to == "sam@seller.example"
    assert identity.status == EmailSenderIdentity.Status.PENDING and identity.provider_sender_id
    [record] = sg.verified_senders_list()
    assert str(record["id"]) == identity.provider_sender_id and record["from_email"] == "sam@seller.example"


def test_sync_marks_the_sender_verified_once_sendgrid_says_so(sim, tenant):
    identity = sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam",
                                      reply_to="sam@seller.example")
    sender_identity_sync(identity=identity)
    assert identity.status == EmailSenderIdentity.Status.PENDING and identity.last_synced_at is not None

    sim.verify_sender(int(identity.provider_sender_id))  # the person clicked the verification link
    sync_sender_identities()  # the periodic task

    identity.refresh_from_db()
    assert identity.status == EmailSenderIdentity.Status.VERIFIED


def test_sync_fails_a_sender_deleted_at_sendgrid(sim, tenant):
    identity = EmailSenderIdentityFactory(tenant=tenant, provider_sender_id="999999")
    assert sender_identities_sync() == 1
    identity.refresh_from_db()
    assert identity.status == EmailSenderIdentity.Status.FAILED


def test_sendgrid_refusal_is_an_application_error_and_nothing_is_stored(sim, tenant):
    with pytest.raises(ApplicationError) as caught:
        sender_identity_create(tenant=tenant, from_email="not-an-address", from_name="X", reply_to="x@y.example")
    assert "Invalid email address" in caught.value.message and caught.value.field == "from_email"
    assert not EmailSenderIdentity.objects.exists()


def test_duplicate_address_for_a_tenant_is_refused(sim, tenant):
    sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam", reply_to="")
    with pytest.raises(ApplicationError):
        sender_identity_create(tenant=tenant, from_email="SAM@seller.example", from_name="Sam", reply_to="")


def test_unreachable_sendgrid_keeps_a_pending_row_that_sync_registers_later(sim, tenant, settings):
    real_host = settings.SENDGRID_API_HOST
    settings.SENDGRID_API_HOST = _closed_port_url()
    identity = sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam", reply_to="")
    assert identity.status == "pending" and identity.provider_sender_id == ""

    settings.SENDGRID_API_HOST = real_host
    sender_identity_sync(identity=identity)
    sender_identity_sync(identity=identity)  # a second sync finds it by address: no second registration

    identity.refresh_from_db()
    assert identity.provider_sender_id and len(sg.verified_senders_list()) == 1


def test_set_paused_flips_the_flag_with_an_audit_entry(tenant):
    from outreach.tenancy.models import AuditEntry

    identity = EmailSenderIdentityFactory(tenant=tenant)
    sender_identity_set_paused(identity=identity, paused=True, reason="complaints")
    sender_identity_set_paused(identity=identity, paused=True)  # already paused: no second entry
    assert EmailSenderIdentity.objects.get(id=identity.id).is_paused
    sender_identity_set_paused(identity=identity, paused=False)
    assert not EmailSenderIdentity.objects.get(id=identity.id).is_paused
    actions = list(AuditEntry.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True))
    assert actions == ["sender.pause", "sender.resume"]


def test_email_validation_returns_sendgrids_verdict(sim):
    result = sg.email_validate(email="dana@acme.example", source="signup")
    assert result["email"] == "dana@acme.example" and result["verdict"] in ("Valid", "Risky", "Invalid")


@pytest.mark.parametrize("fault, kind", [("5xx", SendGridErrorKind.TRANSIENT), ("429", SendGridErrorKind.RATE_LIMITED),
                                         ("drop", SendGridErrorKind.AMBIGUOUS)])
def test_client_classifies_provider_failures(sim, fault, kind):
    sim.set_faults(fault, count=1)
    with pytest.raises(sg.SendGridError) as caught:
        sg.verified_senders_list()
    assert caught.value.kind == kind
    if kind == SendGridErrorKind.RATE_LIMITED:
        assert caught.value.reset_at is not None


def test_client_classifies_a_refused_connection_as_transient(settings):
    settings.SENDGRID_API_HOST = _closed_port_url()
    with pytest.raises(sg.SendGridError) as caught:
        sg.verified_senders_list()
    assert caught.value.kind == SendGridErrorKind.TRANSIENT
