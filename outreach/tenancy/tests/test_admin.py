"""The tenancy admin: keys are issued through the service and shown once; every switch is audited."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, Tenant
from outreach.tenancy.selectors import api_key_get_active, global_sending_stopped
from outreach.tenancy.services import api_key_create, hash_api_key
from outreach.tenancy.tests.factories import TenantFactory

KEY_PATTERN = re.compile(r"ok_[0-9a-f]{8}_[A-Za-z0-9_-]+")


@pytest.mark.django_db
def test_adding_a_key_in_the_admin_issues_it_through_the_service_and_shows_it_once(admin_client, admin_user,
                                                                                   tenant):
    response = admin_client.post(reverse("admin:tenancy_apikey_add"),
                                 {"tenant": tenant.pk, "name": "Zapier", "role": "member"})

    assert response.status_code == 302
    key = ApiKey.objects.get()
    shown_page = admin_client.get(response["Location"]).content.decode()
    raw_keys = KEY_PATTERN.findall(shown_page)
    assert len(raw_keys) == 1
    raw_key = raw_keys[0]
    assert key.key_hash == hash_api_key(raw_key)
    assert raw_key.startswith(f"ok_{key.prefix}_")
    assert (key.tenant, key.role, key.name, key.created_by) == (tenant, "member", "Zapier", admin_user)
    assert api_key_get_active(raw_key=raw_key) == key

    # Shown once: later pages (the key's own page, the list) never carry it, nor the hash.
    for url in (reverse("admin:tenancy_apikey_change", args=[key.pk]), response["Location"]):
        page = admin_client.get(url).content.decode()
        assert raw_key not in page
        assert key.key_hash not in page
        assert 'name="key_hash"' not in page
        assert key.prefix in page


@pytest.mark.django_db
def test_a_keys_tenant_and_role_cannot_be_changed_in_the_admin(admin_client, tenant):
    key = api_key_create(tenant=tenant, role="viewer", name="old").api_key
    other = TenantFactory()

    admin_client.post(reverse("admin:tenancy_apikey_change", args=[key.pk]),
                      {"tenant": other.pk, "role": "owner", "name": "renamed", "key_hash": "0" * 64})

    key.refresh_from_db()
    assert (key.tenant, key.role, key.name) == (tenant, "viewer", "renamed")
    assert key.key_hash != "0" * 64


@pytest.mark.django_db
def test_the_revoke_action_revokes_through_the_service_and_the_key_stops_working(admin_client, admin_user,
                                                                                tenant):
    issued = [api_key_create(tenant=tenant, role="admin") for _ in range(2)]
    kept = api_key_create(tenant=tenant, role="admin")

    response = admin_client.post(reverse("admin:tenancy_apikey_changelist"), {
        "action": "revoke", "_selected_action": [i.api_key.pk for i in issued]})

    assert response.status_code == 302
    assert all(api_key_get_active(raw_key=i.raw_key) is None for i in issued)
    assert api_key_get_active(raw_key=kept.raw_key) == kept.api_key
    assert AuditEntry.objects.filter(action="api_key.revoke", actor=admin_user).count() == 2


@pytest.mark.django_db
def test_api_keys_cannot_be_deleted_from_the_admin(admin_client, tenant):
    key = api_key_create(tenant=tenant, role="admin").api_key

    response = admin_client.post(reverse("admin:tenancy_apikey_delete", args=[key.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


@pytest.mark.django_db
def test_the_pause_action_pauses_tenants_through_the_service(admin_client, admin_user):
    paused, untouched = TenantFactory(), TenantFactory()

    admin_client.post(reverse("admin:tenancy_tenant_changelist"),
                      {"action": "pause_sending", "_selected_action": [paused.pk]})

    assert Tenant.objects.get(pk=paused.pk).sending_paused
    assert not Tenant.objects.get(pk=untouched.pk).sending_paused
    entry = AuditEntry.objects.get(action="tenant.pause")
    assert (entry.actor, entry.tenant) == (admin_user, paused)


@pytest.mark.django_db
def test_resuming_a_tenant_on_its_change_page_is_audited(admin_client, admin_user):
    tenant = TenantFactory(sending_paused=True)
    form = {"name": tenant.name, "slug": tenant.slug, "unsubscribe_redirect_url": "",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}

    response = admin_client.post(reverse("admin:tenancy_tenant_change", args=[tenant.pk]), form)

    assert response.status_code == 302
    assert not Tenant.objects.get(pk=tenant.pk).sending_paused
    assert AuditEntry.objects.filter(action="tenant.resume", actor=admin_user, tenant=tenant).count() == 1


@pytest.mark.django_db
def test_saving_a_tenant_without_touching_the_switch_writes_no_audit_entry(admin_client):
    tenant = TenantFactory()
    form = {"name": "Renamed", "slug": tenant.slug, "unsubscribe_redirect_url": "",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}

    admin_client.post(reverse("admin:tenancy_tenant_change", args=[tenant.pk]), form)

    assert Tenant.objects.get(pk=tenant.pk).name == "Renamed"
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_tenants_cannot_be_deleted_from_the_admin(admin_client, tenant):
    response = admin_client.post(reverse("admin:tenancy_tenant_delete", args=[tenant.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()


@pytest.mark.django_db
def test_the_global_switch_is_a_single_audited_row(admin_client, admin_user):
    add_url = reverse("admin:tenancy_globalsendingswitch_add")

    response = admin_client.post(add_url, {"sending_stopped": "on", "reason": "provider incident"})

    assert response.status_code == 302
    switch = GlobalSendingSwitch.objects.get()
    assert (switch.pk, switch.sending_stopped, switch.updated_by) == (1, True, admin_user)
    assert global_sending_stopped()
    assert admin_client.get(add_url).status_code == 403  # one row only

    admin_client.post(reverse("admin:tenancy_globalsendingswitch_change", args=[1]), {"reason": "resolved"})

    assert not global_sending_stopped()
    actions = list(AuditEntry.objects.order_by("created_at", "id").values_list("action", "detail__reason"))
    assert actions == [("global.stop", "provider incident"), ("global.resume", "resolved")]


@pytest.mark.django_db
def test_the_stop_action_stops_all_sending(admin_client, admin_user):
    response = admin_client.post(reverse("admin:tenancy_globalsendingswitch_add"), {"reason": ""})
    assert response.status_code == 302

    admin_client.post(reverse("admin:tenancy_globalsendingswitch_changelist"),
                      {"action": "stop_sending", "_selected_action": [1]})

    assert global_sending_stopped()
    assert AuditEntry.objects.filter(action="global.stop", actor=admin_user).exists()
