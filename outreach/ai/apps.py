from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "outreach.ai"
    label = "ai"
    verbose_name = "AI calls"
