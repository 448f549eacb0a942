from django.apps import AppConfig

from outreach.ai.offline import offline_responders


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Leads and contacts"

    def ready(self) -> None:
        from contacts import offline_answers  # the app's modules load once the app registry is ready

        offline_responders.register("lead_analysis", offline_answers.lead_analysis_answer, block="LEAD")
