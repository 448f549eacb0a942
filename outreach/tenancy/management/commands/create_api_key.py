from django.core.management.base import BaseCommand, CommandError

from outreach.errors import ApplicationError
from outreach.tenancy.models import Role
from outreach.tenancy.selectors import tenant_get_by_slug
from outreach.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="", help="A label for the key")

    def handle(self, *args, tenant: str, role: str, name: str, **options):
        found = tenant_get_by_slug(slug=tenant)
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        try:
            issued = api_key_create(tenant=found, role=role, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(issued.raw_key)
