"""Production: secrets must come from the environment, HTTPS everywhere.

`python manage.py check --deploy --settings=outreach.settings.production` reports no
issue with the defaults below. The cookie and redirect switches exist only so the
docker-compose stack can be tried over plain http on localhost (see README).
"""
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from outreach.settings.base import *  # noqa: F401,F403
from outreach.settings.base import (
    CLOCK_SPEED,
    DATABASES,
    OUTREACH_LOCAL_MODE,
    PUBLIC_BASE_URL,
    SENDGRID_API_KEY,
    SENDGRID_INBOUND_SECRET,
    SENDGRID_WEBHOOK_PUBLIC_KEY,
    env,
)

if OUTREACH_LOCAL_MODE:
    raise ImproperlyConfigured("OUTREACH_LOCAL_MODE must be off in production: generated secrets are for a "
                               "developer's machine (make run, make demo)")
DEBUG = False
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "simulators"]  # never load the simulators
SECRET_KEY = env.str("SECRET_KEY")  # no default: refuse to start without one
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-") or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")
if len(SENDGRID_INBOUND_SECRET) < 20 or len(set(SENDGRID_INBOUND_SECRET)) < 5:
    # It is the only thing that authenticates inbound mail (SendGrid does not sign Inbound Parse).
    raise ImproperlyConfigured("SENDGRID_INBOUND_SECRET must be a random string of at least 20 characters")
if SENDGRID_API_KEY in ("", "SG.local-simulator-key"):
    raise ImproperlyConfigured("SENDGRID_API_KEY must be a real SendGrid API key in production")
if not SENDGRID_WEBHOOK_PUBLIC_KEY:
    # Without it every signed event webhook is refused (fail closed) and SendGrid gives up on the events
    # after 24 hours: bounces, opt-outs and spam reports would be lost.
    raise ImproperlyConfigured(
        "SENDGRID_WEBHOOK_PUBLIC_KEY must be set (SendGrid: Mail Settings > Signed Event Webhook)"
    )
# A malformed key never gets here: env.ec_public_key (outreach/settings/env.py) refused it in base.
if CLOCK_SPEED != 1.0:
    raise ImproperlyConfigured("CLOCK_SPEED must be 1 in production: the virtual clock is for the demo")

# Unsubscribe links (and Gmail's and Yahoo's one-click List-Unsubscribe) need the real public https address:
# the base default (http://127.0.0.1:8000) or any http:// one would put broken or interceptable links in mail.
if not env.str("PUBLIC_BASE_URL", default="") or not PUBLIC_BASE_URL.startswith("https://"):
    raise ImproperlyConfigured(
        "PUBLIC_BASE_URL must be this installation's public https:// address (e.g. https://outreach.example.com), "
        f"got {env.str('PUBLIC_BASE_URL', default='') or 'nothing'!r}")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")  # no default: a typo must not open the site to any Host header
# The admin's forms post from the public origin; behind a TLS proxy Django must be told it is trusted.
_public = urlsplit(PUBLIC_BASE_URL)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[f"{_public.scheme}://{_public.netloc}"])

# Reuse connections across requests, and check them first so a restarted database costs no errors.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# The TLS-terminating proxy (load balancer, nginx) must set X-Forwarded-Proto and strip it from clients.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Static files are served by WhiteNoise (base MIDDLEWARE) from what `collectstatic` gathered when the image
# was built, with hashed names: never from the apps' folders.
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
