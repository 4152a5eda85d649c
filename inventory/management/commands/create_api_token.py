from django.core.management.base import BaseCommand, CommandError

from inventory.management.commands._common import get_org
from inventory.models import Membership
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.tokens import api_token_create


class Command(BaseCommand):
    help = "Issue an API token for a member (optionally naming the device); prints the key once."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="cli", help="device or purpose")

    def handle(self, *args, org, email, name, **options):
        organisation = get_org(org)
        with tenant_scope(organisation):
            membership = (
                Membership.objects.filter(user__email__iexact=email, is_active=True)
                .select_related("user")
                .first()
            )
            if membership is None:
                raise CommandError(f"{email} is not an active member of {organisation.slug}.")
            _, key = api_token_create(org=organisation, user=membership.user, name=name)
        self.stdout.write(key)
