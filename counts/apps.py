from django.apps import AppConfig


class CountsConfig(AppConfig):
    name = "counts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Stock under an open blind count is hidden from the reads of operators and viewers;
        # inventory asks through its visibility hook (it imports no other app).
        from counts.selectors import blind_zones
        from inventory.reports.visibility import register_hidden_stock

        register_hidden_stock(blind_zones)
