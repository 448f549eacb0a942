"""Import a tenant's existing do-not-contact list (addresses and domains) from a CSV file."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.compliance.do_not_contact import suppressions_import_csv
from outreach.errors import ApplicationError
from outreach.tenancy.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = ("Import a do-not-contact CSV into a tenant: addresses become manual suppressions, domains "
            "do-not-contact domains. Bad rows are reported and skipped; exits 1 if any row was rejected.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("file", help="Path to the CSV file (UTF-8)")
        parser.add_argument("--max-errors", type=int, default=20, help="How many rejected rows to print")

    def handle(self, *args, tenant: str, file: str, max_errors: int, **options) -> None:
        found = tenant_get_by_slug(slug=tenant)
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with path.open("rb") as handle:
                report = suppressions_import_csv(tenant=found, file=handle, actor=None,
                                                 actor_label="manage.py import_do_not_contact")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for error in report.errors[:max_errors]:
            self.stderr.write(f"line {error.line}: {error.value!r}: {error.message}")
        if len(report.errors) > max_errors:
            self.stderr.write(f"... and {len(report.errors) - max_errors} more rejected row(s)")
        self.stdout.write(
            f"{found.slug}: {report.rows} row(s), {report.suppressed_addresses} address(es) and "
            f"{report.suppressed_domains} domain(s) imported, {len(report.errors)} rejected."
        )
        if report.errors:
            raise CommandError(f"{len(report.errors)} row(s) rejected (the others were imported).")
