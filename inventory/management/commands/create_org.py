from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from inventory.tenancy.services import org_create


class Command(BaseCommand):
    help = "Create a tenant organisation (with the default classification map)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, slug, name, time_zone, **options):
        try:
            org = org_create(slug=slug, name=name, time_zone=time_zone)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        except Exception as exc:  # model validation: bad slug, time zone...
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created organisation {org.slug} (id {org.pk}).")
