"""Settings shared by every environment. Values come from the environment (see .env.example)."""
from __future__ import annotations

from celery.schedules import crontab  # noqa: F401 - available for beat entries below
from kombu import Queue

from outreach.queues import QUEUE_NAMES
from outreach.settings.env import BASE_DIR, database_config, env, http_url, redis_url

SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "outreach.tenancy",
    "outreach.ai",
    "contacts",
    "campaigns",
    "messaging",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "outreach.urls"
# Session storage: the one-time API key shown after creating it never travels in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
WSGI_APPLICATION = "outreach.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config(
        env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/outreach")
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Redis and Celery -------------------------------------------------------
REDIS_URL = redis_url("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = redis_url("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "campaign_execution"
# Queue names are part of the deployment contract (workers subscribe by name).
CELERY_QUEUE_NAMES = list(QUEUE_NAMES)
CELERY_TASK_QUEUES = [Queue(name) for name in CELERY_QUEUE_NAMES]
# Routes by task-name prefix; every task is named "<queue>.<action>".
CELERY_TASK_ROUTES = {f"{name}.*": {"queue": name} for name in CELERY_QUEUE_NAMES}
# Periodic work; each entry expires at ~1.5x its interval so a backlog never piles up.
CELERY_BEAT_SCHEDULE: dict = {}
# Messaging (SendGrid): sender verification status, stale-claim recovery, webhook retries.
CELERY_BEAT_SCHEDULE.update({
    "messaging-sync-sender-identities": {
        "task": "campaign_execution.sync_sender_identities", "schedule": 600.0, "options": {"expires": 900},
    },
    "messaging-recover-stale-sends": {
        "task": "campaign_execution.recover_stale_sends", "schedule": 60.0, "options": {"expires": 90},
    },
    "messaging-retry-webhook-deliveries": {
        "task": "webhooks.retry_deliveries", "schedule": 60.0, "options": {"expires": 90},
    },
})
# Campaign engine: the dispatcher turns due scheduled_actions into Celery work (campaigns/dispatcher.py).
CELERY_BEAT_SCHEDULE["campaigns-dispatch-due"] = {
    "task": "campaign_execution.dispatch_due", "schedule": 5.0, "options": {"expires": 7.5},
}
# Work whose Celery message was lost (the broker was down at commit) is published again by these sweeps:
# import jobs still queued and enrolments still without a plan this long after creation.
STALE_WORK_REQUEUE_AFTER_SECONDS = env.int("STALE_WORK_REQUEUE_AFTER_SECONDS", default=900)
CELERY_BEAT_SCHEDULE.update({
    "contacts-requeue-stale-imports": {
        "task": "lead_analysis.requeue_stale_imports", "schedule": 300.0, "options": {"expires": 450},
    },
    "campaigns-requeue-stale-generation": {
        "task": "campaign_creation.requeue_stale_generation", "schedule": 300.0, "options": {"expires": 450},
    },
})
# A claimed scheduled action not finished within this lease (a worker died) is dispatched again.
CAMPAIGN_ACTION_LEASE_SECONDS = env.int("CAMPAIGN_ACTION_LEASE_SECONDS", default=300)

# --- Providers --------------------------------------------------------------
SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="SG.local-simulator-key")
SENDGRID_API_HOST = http_url("SENDGRID_API_HOST", "http://127.0.0.1:8025")
SENDGRID_WEBHOOK_PUBLIC_KEY = env.str("SENDGRID_WEBHOOK_PUBLIC_KEY", default="")
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = env.int("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", default=600)
SENDGRID_INBOUND_SECRET = env.str("SENDGRID_INBOUND_SECRET", default="dev-inbound-secret")
SENDGRID_REQUEST_TIMEOUT_SECONDS = env.float("SENDGRID_REQUEST_TIMEOUT_SECONDS", default=10.0)
# Send rate limits (send_rate_limits, messaging/rate_limits.py): how long a process reuses a tenant's limits
# before reading them again, so an admin edit is enforced within this many seconds.
SEND_RATE_LIMITS_CACHE_SECONDS = env.float("SEND_RATE_LIMITS_CACHE_SECONDS", default=5.0)
# Delivery tells the engine a batch's outcomes after the batch; the stale-send sweep (recover_stale_sends) feeds
# again any sent / suppressed / failed message whose contact campaign has not heard this many clock seconds later.
LOST_SEND_EVENTS_GRACE_SECONDS = env.int("LOST_SEND_EVENTS_GRACE_SECONDS", default=60)

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = http_url("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)
# AI client (outreach/ai/client.py): our own bounded retries, and per-tenant caps so one tenant's
# bulk import cannot take all AI capacity from the others.
AI_MAX_ATTEMPTS = env.int("AI_MAX_ATTEMPTS", default=4)
AI_BACKOFF_BASE_SECONDS = env.float("AI_BACKOFF_BASE_SECONDS", default=0.5)
AI_BACKOFF_MAX_SECONDS = env.float("AI_BACKOFF_MAX_SECONDS", default=20.0)
AI_RETRY_AFTER_MAX_SECONDS = env.float("AI_RETRY_AFTER_MAX_SECONDS", default=30.0)
AI_TENANT_CONCURRENCY = env.int("AI_TENANT_CONCURRENCY", default=4)
AI_TENANT_RATE_PER_MINUTE = env.float("AI_TENANT_RATE_PER_MINUTE", default=120.0)
AI_TENANT_BURST = env.int("AI_TENANT_BURST", default=20)
AI_ACQUIRE_WAIT_SECONDS = env.float("AI_ACQUIRE_WAIT_SECONDS", default=30.0)

PUBLIC_BASE_URL = http_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
FLOWER_URL = http_url("FLOWER_URL", "http://127.0.0.1:5555")

# Compliance: soft-bounce suppressions expire; phone numbers without a country code get this one.
SUPPRESSION_SOFT_BOUNCE_HOURS = env.float("SUPPRESSION_SOFT_BOUNCE_HOURS", default=72)
PHONE_DEFAULT_COUNTRY_CODE = env.str("PHONE_DEFAULT_COUNTRY_CODE", default="1")
UNSUBSCRIBE_MAILTO_DOMAIN = env.str("UNSUBSCRIBE_MAILTO_DOMAIN", default="")  # default: PUBLIC_BASE_URL's host

# Global emergency stop from the environment (an operator can also flip the DB switch).
OUTREACH_SENDING_STOPPED = env.bool("OUTREACH_SENDING_STOPPED", default=False)

# The virtual clock (outreach.clock): production refuses anything but 1.
CLOCK_SPEED = env.float("CLOCK_SPEED", default=1.0)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "outreach.errors.api_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "outreach.tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "outreach.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Outreach API",
    "DESCRIPTION": "AI-planned multi-step outreach: leads, contacts, campaigns, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a `status` field with different choices: name each set once.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "ContactCampaignStatusEnum": "campaigns.models.ContactCampaign.Status",
        "ImportJobStatusEnum": "contacts.models.ImportJob.Status",
        "LeadAnalysisStatusEnum": "contacts.models.Lead.AnalysisStatus",
        "SenderIdentityStatusEnum": "messaging.models.EmailSenderIdentity.Status",
        "TimelineItemKindEnum": "campaigns.api.serializers.TIMELINE_KINDS",
        "ExternalEventTypeEnum": "campaigns.api.serializers.EXTERNAL_EVENT_TYPES",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- delivery helper (H2) ---
import datetime as _dt  # noqa: E402 - kept inside this block until the merge

# Settings messaging read with a fallback at the call site and that no settings file defined; same defaults.
# Delivery (messaging/delivery/): a held message looks again this much later; HTTP attempts ending in 5xx /
# refused before a message fails; a message left `sending` this long (far above the request timeout) is
# re-queued or marked unknown; the lost-event sweep looks back this far in real time.
SENDING_HOLD_RECHECK = _dt.timedelta(minutes=15)
SENDGRID_SEND_MAX_ATTEMPTS = 5
SENDING_LEASE = _dt.timedelta(minutes=10)
LOST_SEND_EVENTS_LOOKBACK = _dt.timedelta(hours=6)
# Webhooks (messaging/webhooks/): signed timestamps accepted this far ahead; soft bounces within 7 days
# before the address is suppressed (for SUPPRESSION_SOFT_BOUNCE_HOURS);
# a click this soon after delivery is a link scanner's; an address-only event is tied to the one tenant
# that mailed the address within this many days; waiting deliveries a process task folds into its transaction.
SENDGRID_WEBHOOK_MAX_FUTURE_SECONDS = 300
SENDGRID_SOFT_BOUNCE_THRESHOLD = 3
SENDGRID_SCANNER_CLICK_WINDOW_SECONDS = 10
SENDGRID_ADDRESS_FALLBACK_DAYS = 30
WEBHOOK_PROCESS_ABSORB_PENDING = 4
# SendGrid's email validation API may use its own key; empty: SENDGRID_API_KEY.
SENDGRID_VALIDATION_API_KEY = ""
