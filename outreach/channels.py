"""The channels a contact is reached on, and the address kinds policy is keyed by.

Used by contacts (a contact's channels), campaigns (a plan step's channel) and messaging (transports,
opt-outs, suppressions), so it lives in the base layer.
"""
from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


CHANNEL_EMAIL = Channel.EMAIL.value
CHANNEL_SMS = Channel.SMS.value
# Not a channel one sends on: a suppression of a whole recipient domain (do-not-contact domains).
CHANNEL_EMAIL_DOMAIN = "email_domain"
ADDRESS_CHANNELS = (CHANNEL_EMAIL, CHANNEL_SMS)
SUPPRESSION_CHANNELS = (CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_EMAIL_DOMAIN)
