"""Issue 11 item 5: reply addresses are per tenant, unguessable and issued by the system; a reply reaches
only the tenant that owns the thread."""
from __future__ import annotations

import pytest

from messaging.inbound.reply_addresses import reply_address_tenant_id, tenant_reply_address
from messaging.models import EmailSenderIdentity, InboundMessage
from messaging.tests.factories import EmailSenderIdentityFactory
from messaging.tests.test_inbound import post_and_process, reply_headers, sent_message
from messaging.tests.test_reply_reading import parsed_mode
from outreach.tenancy.models import Role
from outreach.tenancy.tests.api_clients import api_client
from outreach.tenancy.tests.factories import TenantFactory
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db

DOMAIN = "in.outreach.example"


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=5) as handle:
        yield handle


@pytest.fixture
def domain(settings):
    settings.INBOUND_REPLY_DOMAIN = DOMAIN
    return DOMAIN


def test_reply_addresses_are_per_tenant_and_a_forged_token_names_no_tenant(domain):
    first, second = tenant_reply_address(tenant_id=7), tenant_reply_address(tenant_id=8)
    assert first.startswith("reply+7-") and first.endswith("@" + DOMAIN) and first != second
    assert reply_address_tenant_id(first) == 7 and reply_address_tenant_id(second.upper()) == 8
    # Changing the tenant id in someone's token, or guessing a MAC, names nobody.
    assert reply_address_tenant_id(first.replace("reply+7-", "reply+8-")) is None
    assert reply_address_tenant_id(f"reply+8-{'0' * 24}@{DOMAIN}") is None
    assert reply_address_tenant_id(first.replace(DOMAIN, "other.example")) is None


def test_a_new_sender_gets_the_system_issued_reply_address(tenant, sim, domain):
    client = api_client(tenant=tenant, role=Role.ADMIN)
    response = client.post("/api/v1/sender-identities", {"from_email": "rep@seller.example"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["reply_to"] == tenant_reply_address(tenant_id=tenant.id)


@pytest.mark.parametrize("payload, field", [
    ({"from_email": "rep@seller.example", "reply_to": "OTHER"}, "reply_to"),  # another tenant's reply address
    ({"from_email": "rep@seller.example", "reply_to": f"anything@{DOMAIN}"}, "reply_to"),
    ({"from_email": "rep@seller.example", "reply_to": "rep@seller.example"}, "reply_to"),  # chosen, not issued
    ({"from_email": f"reply+1-abc@{DOMAIN}"}, "from_email"),  # the inbound domain is ours
])
def test_a_sender_cannot_take_another_tenants_reply_address_or_the_inbound_domain(tenant, sim, domain, payload,
                                                                                   field):
    other = TenantFactory()
    payload = {k: (tenant_reply_address(tenant_id=other.id) if v == "OTHER" else v) for k, v in payload.items()}
    client = api_client(tenant=tenant, role=Role.ADMIN)
    response = client.post("/api/v1/sender-identities", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.content.decode()
    assert not EmailSenderIdentity.objects.filter(tenant=tenant).exists()


def test_without_an_inbound_domain_a_sender_cannot_take_another_tenants_reply_to(tenant, sim):
    theirs = EmailSenderIdentityFactory(from_email="rep@tenant-b.example", reply_to="replies@tenant-b.example")
    client = api_client(tenant=tenant, role=Role.ADMIN)
    for stolen in ("replies@tenant-b.example", "REP@tenant-b.example"):
        response = client.post("/api/v1/sender-identities",
                               {"from_email": "rep@seller.example", "reply_to": stolen}, format="json")
        assert response.status_code == 400 and "reply_to" in response.content.decode()
    assert not EmailSenderIdentity.objects.filter(tenant=tenant).exists()
    assert theirs.tenant_id != tenant.id


def test_the_token_decides_the_tenant_even_when_the_headers_name_another_tenants_mail(client, sim, inbound_url,
                                                                                       domain):
    theirs = sent_message("jane@x.example")
    ours = sent_message("jane@x.example")
    assert theirs.tenant_id != ours.tenant_id
    # The reply is addressed to OUR token but its headers thread to the other tenant's message.
    headers = reply_headers(to_message=theirs, sender="jane@x.example",
                            To=tenant_reply_address(tenant_id=ours.tenant_id))
    post_and_process(client, inbound_url, parsed_mode(headers, text="Can you send pricing?"))

    reply = InboundMessage.objects.get()
    assert (reply.tenant_id, reply.outbound_message_id) == (ours.tenant_id, ours.id)


def test_a_forged_token_falls_back_to_the_threading_headers(client, sim, inbound_url, domain):
    message = sent_message()
    forged = f"reply+{message.tenant_id + 1}-{'a' * 24}@{DOMAIN}"
    headers = reply_headers(to_message=message, sender=message.to_address, To=forged)
    post_and_process(client, inbound_url, parsed_mode(headers, text="Can you send pricing?"))
    assert InboundMessage.objects.get().tenant_id == message.tenant_id
