from django.core.management.base import BaseCommand, CommandError

from outreach.errors import ApplicationError
from outreach.tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (a sales team) and print its slug."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The tenant's display name")
        parser.add_argument("--slug", help="Wanted slug (default: from the name)")

    def handle(self, *args, name: str, slug: str | None = None, **options):
        try:
            tenant = tenant_create(name=name, slug=slug)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(tenant.slug)
