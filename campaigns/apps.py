from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # contacts (a lower app) declares what it needs from campaigns; campaigns fills it at start-up.
        # Imported here: the module reads models, which are not loaded while apps.py is.
        from campaigns.contacts_extensions import connect

        connect()
