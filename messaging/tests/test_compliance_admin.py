"""Admin do-not-contact CSV import/export views and the import_do_not_contact command."""
from __future__ import annotations

import csv
import io

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import path

from messaging.admin_compliance import ComplianceAdminMixin
from messaging.compliance import send_block_reason, suppressions_import_csv
from messaging.models import CommunicationSuppression
from messaging.tests.factories import CommunicationSuppressionFactory, ContactUnsubscribeFactory
from outreach.tenancy.models import AuditEntry
from outreach.tenancy.tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("messaging.tests.test_compliance_admin")]

# A private admin site with the mixin, so these tests do not depend on how messaging/admin.py wires it.
site = admin.AdminSite(name="admin")


class _SuppressionAdmin(ComplianceAdminMixin, admin.ModelAdmin):
    pass


site.register(CommunicationSuppression, _SuppressionAdmin)
urlpatterns = [path("admin/", site.urls)]


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_changelist_shows_import_and_export_buttons(staff_client):
    response = staff_client.get("/admin/messaging/communicationsuppression/")
    assert response.status_code == 200
    assert b"import-do-not-contact/" in response.content and b"export-do-not-contact/" in response.content


def test_admin_import_suppresses_addresses_and_domains_and_lists_bad_rows(tenant, staff_client):
    upload = SimpleUploadedFile("dnc.csv", b"value\ndana@acme.example\ncompetitor.example\nbad@\n",
                                content_type="text/csv")
    response = staff_client.post("/admin/messaging/communicationsuppression/import-do-not-contact/",
                                 {"tenant": tenant.pk, "file": upload})
    assert response.status_code == 200
    assert b"bad@" in response.content and b"1 rejected" in response.content
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="dana@acme.example") == "suppressed:manual"
    assert send_block_reason(tenant_id=tenant.pk, channel="email", value="x@competitor.example") == \
        "suppressed:domain"
    assert AuditEntry.objects.get(action="suppression.import").actor is not None


def test_admin_import_without_errors_redirects_to_the_changelist(tenant, staff_client):
    upload = SimpleUploadedFile("dnc.csv", b"dana@acme.example\n", content_type="text/csv")
    response = staff_client.post("/admin/messaging/communicationsuppression/import-do-not-contact/",
                                 {"tenant": tenant.pk, "file": upload})
    assert response.status_code == 302
    assert CommunicationSuppression.objects.filter(tenant=tenant).count() == 1


def test_admin_views_need_staff(tenant, client):
    client.force_login(UserFactory(is_staff=False))
    response = client.get(f"/admin/messaging/communicationsuppression/export-do-not-contact/?tenant={tenant.pk}")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_admin_export_streams_only_that_tenants_list_and_reimports(tenant, other_tenant, staff_client):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="optout@acme.example", source="one_click")
    CommunicationSuppressionFactory(tenant=tenant, value="hard@acme.example", reason="hard_bounce")
    CommunicationSuppressionFactory(tenant=tenant, channel="email_domain", value="competitor.example",
                                    reason="domain")
    CommunicationSuppressionFactory(tenant=other_tenant, value="theirs@acme.example")

    response = staff_client.get(
        f"/admin/messaging/communicationsuppression/export-do-not-contact/?tenant={tenant.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"do-not-contact-{tenant.slug}-" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["kind"], r["channel"], r["value"]) for r in rows} == {
        ("unsubscribe", "email", "optout@acme.example"), ("suppression", "email", "hard@acme.example"),
        ("suppression", "email_domain", "competitor.example"),
    }
    report = suppressions_import_csv(tenant=other_tenant, file=text.encode())
    assert report.errors == [] and report.imported == 3
    assert send_block_reason(tenant_id=other_tenant.pk, channel="email", value="x@competitor.example") == \
        "suppressed:domain"


def test_admin_export_escapes_cells_a_spreadsheet_would_run_and_still_reimports(tenant, other_tenant, staff_client):
    ContactUnsubscribeFactory(tenant=tenant, channel_value="optout@acme.example", source="one_click",
                              detail="=cmd|' /C calc'!A0")
    CommunicationSuppressionFactory(tenant=tenant, value='=HYPERLINK("http://evil.example")@acme.example',
                                    detail="@SUM(1+1)")
    CommunicationSuppressionFactory(tenant=tenant, channel="sms", value="+15551234567", detail="-1+1")

    response = staff_client.get(
        f"/admin/messaging/communicationsuppression/export-do-not-contact/?tenant={tenant.pk}")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))

    cells = [cell for row in rows for cell in row.values() if cell]
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"]
    assert {r["detail"] for r in rows} == {"'=cmd|' /C calc'!A0", "'@SUM(1+1)", "'-1+1"}
    report = suppressions_import_csv(tenant=other_tenant, file=text.encode())  # the quote is taken off again
    assert [error.value for error in report.errors] == ['=HYPERLINK("http://evil.example")@acme.example']
    assert send_block_reason(tenant_id=other_tenant.pk, channel="sms", value="+15551234567") is not None


def test_admin_export_without_a_tenant_shows_the_form(staff_client):
    response = staff_client.get("/admin/messaging/communicationsuppression/export-do-not-contact/")
    assert response.status_code == 200 and b"<form" in response.content


def test_import_command_imports_and_exits_non_zero_on_rejected_rows(tenant, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("email\ndana@acme.example\n")
    out = io.StringIO()
    call_command("import_do_not_contact", "--tenant", tenant.slug, str(good), stdout=out)
    assert "1 address(es)" in out.getvalue()
    assert CommunicationSuppression.objects.filter(tenant=tenant, value="dana@acme.example").exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("email\nbob@acme.example\nnope\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_do_not_contact", "--tenant", tenant.slug, str(bad), stdout=io.StringIO(), stderr=err)
    assert "line 3" in err.getvalue()
    assert CommunicationSuppression.objects.filter(tenant=tenant, value="bob@acme.example").exists()


def test_import_command_refuses_an_unknown_tenant(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("dana@acme.example\n")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("import_do_not_contact", "--tenant", "nope", str(f))


def test_an_upload_over_the_request_limit_is_refused_with_413_before_any_of_it_is_written_to_disk(
    tenant, staff_client, settings, monkeypatch,
):
    from django.core.files import uploadhandler

    opened: list[str] = []
    real_new_file = uploadhandler.TemporaryFileUploadHandler.new_file

    def recording_new_file(self, *args, **kwargs):
        opened.append(args[0] if args else kwargs.get("field_name", ""))
        return real_new_file(self, *args, **kwargs)

    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", recording_new_file)
    settings.REQUEST_MAX_BYTES = 1024 * 1024
    upload = SimpleUploadedFile("dnc.csv", b"x@acme.example\n" * 200_000, content_type="text/csv")  # 3 MB

    response = staff_client.post("/admin/messaging/communicationsuppression/import-do-not-contact/",
                                 {"tenant": tenant.pk, "file": upload})

    assert response.status_code == 413 and "larger than 1048576 bytes" in response.json()["detail"]
    assert opened == []  # Django's multipart parser never ran, so no temporary file was made
    assert not CommunicationSuppression.objects.exists()
