from django.apps import AppConfig


class WebhooksOutConfig(AppConfig):
    name = "outreach.webhooks_out"
    label = "webhooks_out"
    verbose_name = "Outgoing webhooks"
