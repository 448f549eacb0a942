from celery.signals import worker_init, worker_process_init
from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Imported here, inside messaging: these modules import models, which need the app registry ready.
        from messaging import offline_answers
        from messaging.inbound.warm_up import on_worker_start
        from messaging.providers import provide_extension_points
        from messaging.storage import connect_storage_rules

        provide_extension_points()
        connect_storage_rules()
        offline_responders.register("reply_classification", offline_answers.reply_classification_answer, block="REPLY")
        # Worker processes only: the mail-reading libraries load at start, not on the first reply.
        worker_init.connect(on_worker_start, weak=False, dispatch_uid="messaging.inbound.warm_up.worker_init")
        worker_process_init.connect(on_worker_start, weak=False,
                                    dispatch_uid="messaging.inbound.warm_up.worker_process_init")
