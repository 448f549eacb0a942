"""A logging filter that keeps secrets out of log lines (the console handler of settings.LOGGING).

The inbound mail secret used to travel in the URL path, so every "Not Found: /webhooks/sendgrid/inbound/..."
line and every access log held it. It now travels as basic auth credentials, but an old Inbound Parse
setting or a guess still puts something in that path: the filter replaces the path segment, any
occurrence of the configured secret, and basic auth credentials in a logged URL or header.
"""
from __future__ import annotations

import logging
import re

from django.conf import settings

REDACTED = "[redacted]"
_PATH_SECRET = re.compile(r"(/webhooks/sendgrid/inbound/)[^\s/?\"']+")
_URL_CREDENTIALS = re.compile(r"(https?://)[^\s/@:]+:[^\s/@]+@")
_BASIC_AUTH = re.compile(r"(Basic\s+)[A-Za-z0-9+/=]{8,}")


def redact(text: str) -> str:
    secret = getattr(settings, "SENDGRID_INBOUND_SECRET", "")
    if secret and secret in text:
        text = text.replace(secret, REDACTED)
    text = _PATH_SECRET.sub(rf"\g<1>{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}@", text)
    return _BASIC_AUTH.sub(rf"\g<1>{REDACTED}", text)


class SecretRedactingFilter(logging.Filter):
    """Rewrites the record's message (arguments merged in) so no handler ever formats the secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
