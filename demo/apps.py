from django.apps import AppConfig


class DemoConfig(AppConfig):
    """``manage.py seed_demo``: the one app that may import every other app."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
