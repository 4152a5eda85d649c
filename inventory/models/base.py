"""The tenant-owned base model.

Every tenant-owned row carries a direct ``org`` foreign key (children too, so scoping never needs
a join). Its default manager is django-scopes' ``ScopedManager``: a query made while no
organisation scope is active raises ``ScopeError`` instead of quietly returning every tenant's
rows. Entry points (API views, the admin, Celery tasks, management commands) enter the scope
with ``inventory.tenancy.scope.tenant_scope``. ``unscoped`` exists for the few places that must
look across organisations on purpose (token authentication, membership resolution, platform
superusers) so that such reads are explicit and easy to find.
"""

from django.db import models
from django_scopes import ScopedManager


class TenantModel(models.Model):
    org = models.ForeignKey(
        "inventory.Organization", on_delete=models.PROTECT, related_name="+", editable=False
    )

    objects = ScopedManager(org="org")
    unscoped = models.Manager()

    class Meta:
        abstract = True
