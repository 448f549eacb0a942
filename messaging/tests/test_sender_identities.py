"""Sender identities against the simulator's Verified Senders API, and the SendGrid client's error kinds."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
from messaging.tasks import sync_sender_identities
from messaging.tests.factories import EmailSenderIdentityFactory
from outreach.errors import ApplicationError
from outreach.tenancy.tests.factories import TenantFactory
from simulators.sendgrid.testing import closed_port_url, running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=2, sender_verify_delay_seconds=3600.0) as handle:
        yield handle




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
    settings.SENDGRID_API_HOST = closed_port_url()
    identity = sender_identity_create(tenant=tenant, from_email="sam@seller.example", from_name="Sam", reply_to="")
    assert identity.status == "pending" and identity.provider_sender_id == ""

    settings.SENDGRID_API_HOST = real_host
    sender_identity_sync(identity=identity)
    sender_identity_sync(identity=identity)  # a second sync finds it by its provider id: no second registration

    identity.refresh_from_db()
    assert identity.provider_sender_id and len(sg.verified_senders_list()) == 1


def test_sync_never_adopts_another_tenants_verified_record_for_the_same_address(sim, tenant):
    theirs = sender_identity_create(tenant=tenant, from_email="sales@shared.example", from_name="A", reply_to="")
    sim.verify_sender(int(theirs.provider_sender_id))
    sender_identity_sync(identity=theirs)
    assert theirs.status == EmailSenderIdentity.Status.VERIFIED
    # Another tenant's identity for the same address, never registered (SendGrid was unreachable).
    mine = EmailSenderIdentityFactory(tenant=TenantFactory(), from_email="sales@shared.example",
                                      provider_sender_id="", status=EmailSenderIdentity.Status.PENDING)

    sender_identities_sync()

    mine.refresh_from_db()
    assert mine.status == EmailSenderIdentity.Status.PENDING
    assert mine.provider_sender_id and mine.provider_sender_id != theirs.provider_sender_id
    # It was registered on its own: SendGrid mails its own verification link to the address.
    assert {str(r["id"]) for r in sg.verified_senders_list()} == {theirs.provider_sender_id, mine.provider_sender_id}
    theirs.refresh_from_db()
    assert theirs.status == EmailSenderIdentity.Status.VERIFIED


class _AlreadyRegisteredSendGrid(BaseHTTPRequestHandler):
    """Stands in for real SendGrid, which (unlike the simulator) refuses a second verified sender for an
    address already registered in the account."""

    records: list[dict] = []

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer(200, {"results": self.records})

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(400, {"errors": [{"field": "from_email", "message": "already exists", "help": None}]})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def sendgrid_already_registered(settings):
    _AlreadyRegisteredSendGrid.records = [{"id": 4242, "from_email": "sales@shared.example", "verified": True}]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlreadyRegisteredSendGrid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SENDGRID_API_HOST = f"http://127.0.0.1:{server.server_address[1]}"
    yield
    server.shutdown()
    server.server_close()


def test_already_registered_at_sendgrid_marks_the_identity_failed_never_verified(sendgrid_already_registered,
                                                                                 tenant, caplog):
    mine = EmailSenderIdentityFactory(tenant=tenant, from_email="sales@shared.example", provider_sender_id="",
                                      status=EmailSenderIdentity.Status.PENDING)

    sender_identity_sync(identity=mine)

    mine.refresh_from_db()
    assert mine.status == EmailSenderIdentity.Status.FAILED and mine.provider_sender_id == ""
    assert "already registered" in caplog.text


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
    settings.SENDGRID_API_HOST = closed_port_url()
    with pytest.raises(sg.SendGridError) as caught:
        sg.verified_senders_list()
    assert caught.value.kind == SendGridErrorKind.TRANSIENT


@pytest.mark.parametrize("pool, ok", [("x", False), ("xy", True), ("x" * 64, True)])
def test_an_ip_pool_name_sendgrid_would_refuse_is_refused_at_the_form(pool, ok):
    from django.core.exceptions import ValidationError

    identity = EmailSenderIdentityFactory(ip_pool="")
    identity.ip_pool = pool
    if ok:
        identity.full_clean()
    else:
        with pytest.raises(ValidationError) as caught:
            identity.full_clean()
        assert "ip_pool" in caught.value.message_dict
