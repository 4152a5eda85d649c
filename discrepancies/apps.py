from django.apps import AppConfig


class DiscrepanciesConfig(AppConfig):
    name = "discrepancies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Inventory imports no other app: the discrepancies take part in its flows through the
        # hooks it offers, registered here once.
        from discrepancies import enforcement, hooks, notifications

        hooks.register()  # ad-hoc corrections' approval, shortfalls, the invariant check
        enforcement.register()  # record / warn / block on the write path's policy hook
        notifications.register()  # e-mail for HIGH/CRITICAL, the open-discrepancies gauge
