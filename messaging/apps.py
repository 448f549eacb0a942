from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from messaging import offline_answers  # the app's modules load once the app registry is ready

        offline_responders.register("reply_classification", offline_answers.reply_classification_answer, block="REPLY")
