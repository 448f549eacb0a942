from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Imported here: the providers import models, which need the app registry to be ready.
        from messaging.providers import provide_extension_points

        provide_extension_points()
