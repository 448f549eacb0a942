from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Imported here, inside analytics: the module reads models, which are not loaded while apps.py is.
        from analytics.providers import connect

        connect()
