from django.core.management.base import CommandError
from django_scopes import scopes_disabled

from inventory.models import Organization


def get_org(slug: str) -> Organization:
    with scopes_disabled():
        org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise CommandError(f"No organisation with slug '{slug}'.")
    return org
