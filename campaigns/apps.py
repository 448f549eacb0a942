from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # contacts (a lower app) declares what it needs from campaigns; campaigns fills it at start-up.
        # Imported here: these modules read models, which are not loaded while apps.py is.
        from campaigns import offline_answers
        from campaigns.contacts_extensions import connect

        connect()
        offline_responders.register("plan", offline_answers.plan_answer, block="INPUT")
