"""The simulators stay out of production: its settings never install them (docs/simulator.md)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from simulators.sendgrid.signing import generate_key_pair

ROOT = Path(__file__).resolve().parents[2]
# What outreach/settings/production.py refuses to start without.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "outreach.settings.production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "outreach.example.com",
    "SENDGRID_INBOUND_SECRET": secrets.token_urlsafe(24),
    "SENDGRID_API_KEY": "SG.a-real-looking-key",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": generate_key_pair()[1],
    "CLOCK_SPEED": "1",
    "PUBLIC_BASE_URL": "https://outreach.example.com",
    "OUTREACH_LOCAL_MODE": "0",  # the test suite runs in local mode; production refuses it
}
PRINT_APPS = "import django; django.setup(); from django.conf import settings; import json; " \
             "print(json.dumps(settings.INSTALLED_APPS))"


def test_production_settings_do_not_install_the_simulators():
    env = {**os.environ, **PRODUCTION_ENV}
    result = subprocess.run([sys.executable, "-c", PRINT_APPS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    apps = json.loads(result.stdout.strip().splitlines()[-1])
    assert "simulators" not in apps
    assert "messaging" in apps  # the product itself is still there


def test_development_and_test_settings_install_the_simulators():
    assert "simulators" in settings.INSTALLED_APPS  # so `manage.py sendgrid_simulator` and `ai_stub` exist
