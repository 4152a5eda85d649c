import importlib.util

from django.apps import AppConfig


class UpstockConfig(AppConfig):
    name = "upstock"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The nightly run generation joins the platform's one scheduler (inventory.scheduling):
        # ``upstock.jobs`` registers it. Looked up first so the app loads on its own while the
        # job module is being written.
        if importlib.util.find_spec("upstock.jobs") is not None:
            from upstock import jobs

            jobs.register()
