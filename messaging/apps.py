from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Imported here, inside messaging: these modules import models, which need the app registry ready.
        from messaging import offline_answers
        from messaging.providers import provide_extension_points
        from messaging.storage import connect_storage_rules

        provide_extension_points()
        connect_storage_rules()
        offline_responders.register("reply_classification", offline_answers.reply_classification_answer, block="REPLY")
