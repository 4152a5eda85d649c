from django.core.management.base import CommandError
from django_scopes import scopes_disabled

from inventory.models import Organization, Store


def get_org(slug: str) -> Organization:
    with scopes_disabled():
        org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise CommandError(f"No organisation with slug '{slug}'.")
    return org


def get_store(org: Organization, code: str | None) -> Store | None:
    """The org's store with this code (None when no code is given); call inside its scope."""
    if not code:
        return None
    store = Store.objects.filter(org=org, code=code).first()
    if store is None:
        raise CommandError(f"No store '{code}' in {org.slug}.")
    return store
