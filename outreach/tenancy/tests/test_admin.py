"""The tenancy admin: keys are issued through the service and shown once; the global stop and tenant pauses
are visible controls behind a POST confirmation (CSRF-protected), each flip audited."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from outreach.tenancy.models import ApiKey, AuditEntry, GlobalSendingSwitch, Tenant
from outreach.tenancy.selectors import api_key_get_active, global_sending_stopped
from outreach.tenancy.services import api_key_create, hash_api_key
from outreach.tenancy.tests.factories import TenantFactory, UserFactory

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
def test_the_pause_action_asks_for_confirmation_then_pauses_through_the_service(admin_client, admin_user):
    paused, untouched = TenantFactory(), TenantFactory()
    changelist = reverse("admin:tenancy_tenant_changelist")

    confirm = admin_client.post(changelist, {"action": "pause_sending", "_selected_action": [paused.pk]})

    assert confirm.status_code == 200
    assert 'name="post" value="yes"' in confirm.content.decode()
    assert not Tenant.objects.get(pk=paused.pk).sending_paused
    assert not AuditEntry.objects.exists()

    done = admin_client.post(changelist, {"action": "pause_sending", "_selected_action": [paused.pk],
                                          "post": "yes", "reason": "complaint from a recipient"})

    assert done.status_code == 302
    assert Tenant.objects.get(pk=paused.pk).sending_paused
    assert not Tenant.objects.get(pk=untouched.pk).sending_paused
    entry = AuditEntry.objects.get(action="tenant.pause")
    assert (entry.actor, entry.tenant, entry.detail["reason"]) == (admin_user, paused,
                                                                   "complaint from a recipient")
    assert "Paused 1 tenant." in [str(m) for m in get_messages(done.wsgi_request)]


@pytest.mark.django_db
def test_the_bulk_pause_counts_what_changed_and_skips_tenants_already_paused(admin_client):
    already = TenantFactory(sending_paused=True)
    fresh = TenantFactory()

    done = admin_client.post(reverse("admin:tenancy_tenant_changelist"),
                             {"action": "pause_sending", "_selected_action": [already.pk, fresh.pk], "post": "yes"})

    assert "Paused 1 tenant. 1 skipped (already paused)." in [str(m) for m in get_messages(done.wsgi_request)]
    assert AuditEntry.objects.filter(action="tenant.pause").count() == 1


@pytest.mark.django_db
def test_the_tenant_page_shows_the_pause_button_and_its_get_changes_nothing(admin_client):
    tenant = TenantFactory()
    switch_url = reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "pause_sending"])

    page = admin_client.get(reverse("admin:tenancy_tenant_change", args=[tenant.pk])).content.decode()
    confirm = admin_client.get(switch_url)

    assert switch_url in page
    assert reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "resume_sending"]) not in page
    assert confirm.status_code == 200 and "Yes, pause sending" in confirm.content.decode()
    assert not Tenant.objects.get(pk=tenant.pk).sending_paused
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_resuming_a_tenant_from_its_page_is_audited(admin_client, admin_user):
    tenant = TenantFactory(sending_paused=True)

    response = admin_client.post(reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "resume_sending"]),
                                 {"reason": "resolved"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tenancy_tenant_change", args=[tenant.pk])
    assert not Tenant.objects.get(pk=tenant.pk).sending_paused
    entry = AuditEntry.objects.get(action="tenant.resume")
    assert (entry.actor, entry.tenant, entry.detail["reason"]) == (admin_user, tenant, "resolved")


@pytest.mark.django_db
def test_the_tenant_form_cannot_flip_the_pause_flag(admin_client):
    tenant = TenantFactory(sending_paused=True)
    form = {"name": tenant.name, "slug": tenant.slug, "unsubscribe_redirect_url": "", "sending_paused": "",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}

    response = admin_client.post(reverse("admin:tenancy_tenant_change", args=[tenant.pk]), form)

    assert response.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).sending_paused
    assert not AuditEntry.objects.exists()


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


STOP_URL = "admin:tenancy_globalsendingswitch_stop"
RESUME_URL = "admin:tenancy_globalsendingswitch_resume"


@pytest.mark.django_db
def test_the_index_shows_sending_allowed_and_the_emergency_stop_button(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "Sending is allowed." in page
    assert reverse(STOP_URL) in page
    assert "ALL SENDING IS STOPPED" not in page


@pytest.mark.django_db
def test_the_emergency_stop_asks_first_and_its_get_changes_nothing(admin_client):
    confirm = admin_client.get(reverse(STOP_URL))

    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Stop all sending, for every tenant?" in body and 'method="post"' in body
    assert not global_sending_stopped()
    assert not GlobalSendingSwitch.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_emergency_stop_stops_all_sending_with_an_audit_entry_and_a_red_banner(admin_client, admin_user):
    response = admin_client.post(reverse(STOP_URL), {"reason": "provider incident"})

    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert global_sending_stopped()
    switch = GlobalSendingSwitch.objects.get()
    assert (switch.pk, switch.sending_stopped, switch.reason, switch.updated_by) == (
        1, True, "provider incident", admin_user)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.detail["reason"]) == ("global.stop", admin_user, "provider incident")

    index = admin_client.get(reverse("admin:index")).content.decode()
    assert 'class="state stopped"' in index and "provider incident" in index
    assert reverse(RESUME_URL) in index
    # The banner follows the operator to every admin page while the stop holds.
    assert 'id="global-stop-banner"' in admin_client.get(reverse("admin:tenancy_tenant_changelist")).content.decode()


@pytest.mark.django_db
def test_allowing_sending_again_is_confirmed_and_audited(admin_client, admin_user):
    admin_client.post(reverse(STOP_URL), {"reason": "incident"})

    assert admin_client.get(reverse(RESUME_URL)).status_code == 200
    assert global_sending_stopped()

    admin_client.post(reverse(RESUME_URL), {"reason": "resolved"})

    assert not global_sending_stopped()
    actions = list(AuditEntry.objects.order_by("created_at", "id").values_list("action", "detail__reason"))
    assert actions == [("global.stop", "incident"), ("global.resume", "resolved")]
    assert 'id="global-stop-banner"' not in admin_client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db
def test_the_global_switch_has_no_add_or_edit_form(admin_client):
    admin_client.post(reverse(STOP_URL), {})

    assert admin_client.get(reverse("admin:tenancy_globalsendingswitch_add")).status_code == 403
    admin_client.post(reverse("admin:tenancy_globalsendingswitch_change", args=[1]), {"reason": "sneaky"})
    assert global_sending_stopped()
    page = admin_client.get(reverse("admin:tenancy_globalsendingswitch_change", args=[1])).content.decode()
    assert 'name="_save"' not in page and reverse(RESUME_URL) in page


@pytest.mark.django_db
def test_the_switches_need_a_csrf_token(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    tenant = TenantFactory()

    stop = client.post(reverse(STOP_URL), {"reason": "x"})
    pause = client.post(reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "pause_sending"]))

    assert (stop.status_code, pause.status_code) == (403, 403)
    assert not global_sending_stopped() and not Tenant.objects.get(pk=tenant.pk).sending_paused

    confirm = client.get(reverse(STOP_URL))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.content.decode()).group(1)
    assert client.post(reverse(STOP_URL), {"csrfmiddlewaretoken": token}).status_code == 302
    assert global_sending_stopped()


@pytest.mark.django_db
def test_non_staff_users_reach_no_switch(client, tenant):
    client.force_login(UserFactory(is_staff=False))
    urls = [reverse(STOP_URL), reverse(RESUME_URL), reverse("admin:index"),
            reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "pause_sending"])]

    for url in urls:
        for response in (client.get(url), client.post(url, {"reason": "x"})):
            assert response.status_code == 302 and "/login/" in response["Location"], url
    assert not global_sending_stopped() and not Tenant.objects.get(pk=tenant.pk).sending_paused
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_view_only_staff_see_the_state_but_cannot_flip_a_switch(client, tenant):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_tenant", "view_globalsendingswitch"]))
    client.force_login(user)

    page = client.get(reverse("admin:tenancy_tenant_change", args=[tenant.pk]))
    assert page.status_code == 200
    assert reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "pause_sending"]) not in page.content.decode()
    assert client.post(reverse("admin:tenancy_tenant_switch", args=[tenant.pk, "pause_sending"])).status_code == 403
    assert client.post(reverse(STOP_URL)).status_code == 403
    assert not global_sending_stopped() and not Tenant.objects.get(pk=tenant.pk).sending_paused


@pytest.mark.django_db
def test_flower_and_the_api_docs_are_linked_from_the_admin_header(admin_client, settings):
    settings.FLOWER_URL = "http://flower.internal:5555"

    page = admin_client.get(reverse("admin:tenancy_tenant_changelist")).content.decode()

    assert 'href="http://flower.internal:5555"' in page
    assert f'href="{reverse("api-docs")}"' in page
