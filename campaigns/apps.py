from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from campaigns import offline_answers  # the app's modules load once the app registry is ready

        offline_responders.register("plan", offline_answers.plan_answer, block="INPUT")
