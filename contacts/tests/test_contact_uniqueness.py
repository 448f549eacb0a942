"""One contact per email address in a tenant, held by the database even when requests race."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from contacts.models import Contact
from contacts.services import contact_create
from outreach.errors import ApplicationError
from outreach.tenancy.tests.factories import TenantFactory


@pytest.mark.django_db(transaction=True)
def test_two_racing_creates_of_one_address_leave_one_contact_and_a_field_error():
    tenant = TenantFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        try:
            barrier.wait(timeout=10)
            contact_create(tenant=tenant, first_name="Dana", email="Dana@Acme.example")
            outcomes.append("created")
        except ApplicationError as exc:
            outcomes.append(f"refused:{exc.field}")
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["created", "refused:email"]
    assert Contact.objects.filter(tenant=tenant, email="dana@acme.example").count() == 1


@pytest.mark.django_db
def test_the_same_address_in_two_tenants_is_two_contacts():
    for tenant in (TenantFactory(), TenantFactory()):
        contact_create(tenant=tenant, first_name="Dana", email="dana@acme.example")
    assert Contact.objects.filter(email="dana@acme.example").count() == 2
