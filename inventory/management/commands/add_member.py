from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from core.errors import ApplicationError
from inventory.management.commands._common import get_org
from inventory.models import Role, Store
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.services import membership_create


class Command(BaseCommand):
    help = "Give a person (created if new) a role in an organisation, optionally for some stores."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--stores", default="", help="comma-separated store codes")
        parser.add_argument(
            "--password", default="", help="set a password (for a shared tablet sign-in)"
        )

    def handle(self, *args, org, email, role, stores, password, **options):
        try:
            validate_email(email)
        except Exception as exc:
            raise CommandError(f"Not an e-mail address: {email}") from exc
        organisation = get_org(org)
        codes = [c.strip() for c in stores.split(",") if c.strip()]
        with tenant_scope(organisation):
            found = list(Store.objects.filter(code__in=codes))
            missing = sorted(set(codes) - {s.code for s in found})
            if missing:
                raise CommandError(f"Unknown store code(s): {', '.join(missing)}")
            try:
                membership = membership_create(
                    org=organisation, email=email, role=role, stores=found
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            if password:
                membership.user.set_password(password)
                membership.user.save(update_fields=["password"])
        scope = ", ".join(codes) if codes else "all stores"
        self.stdout.write(f"{email} is {role} of {organisation.slug} ({scope}).")
