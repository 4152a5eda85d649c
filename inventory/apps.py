from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class InventoryConfig(AppConfig):
    default = True
    name = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from inventory.api import schema  # noqa: F401  (registers the OpenAPI auth scheme)
        from inventory.stock import triggers as db_triggers

        # SQLite drops triggers when it rebuilds a table: put the ledger guard back every time.
        post_migrate.connect(db_triggers.install_after_migrate, sender=self)


class TenantAdminConfig(admin_apps.AdminConfig):
    """The admin site, scoped to the signed-in person's organisation."""

    default = False
    default_site = "inventory.admin_site.TenantAdminSite"
