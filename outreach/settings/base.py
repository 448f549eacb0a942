"""Settings shared by every environment. Values come from the environment (see .env.example).

Every setting the code reads is defined here once, typed, with its default; code reads `settings.X`,
never `getattr(settings, "X", default)`. The readers (outreach/settings/env.py) refuse a malformed value
at start-up with a message naming the variable.
"""
from __future__ import annotations

import datetime as dt
import warnings

from celery.schedules import crontab  # noqa: F401 - available for beat entries below
from kombu import Queue

from outreach.queues import QUEUE_NAMES, TaskName
from outreach.queues import Queue as QueueName
from outreach.settings.env import BASE_DIR, database_config, env, http_url, redis_url
from outreach.settings.local_secrets import secret_setting

# A developer's machine (make run, make demo, scripts/*.sh, tests): secrets left unset are generated once per
# checkout. Anywhere else an unset secret stops start-up; production refuses local mode altogether.
OUTREACH_LOCAL_MODE = env.bool("OUTREACH_LOCAL_MODE", default=False)
SECRET_KEY = secret_setting("SECRET_KEY", local_mode=OUTREACH_LOCAL_MODE)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # admin login throttling (AXES_* below)
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from our own static files (no CDN)
    "django_celery_beat",
    "outreach.tenancy",
    "outreach.ai",
    "outreach.webhooks_out",
    "contacts",
    "campaigns",
    "messaging",
    "analytics",
    "simulators",  # development stand-ins (SendGrid, OpenAI); production.py drops it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS, the API docs' Swagger UI) come from the app itself, so gunicorn
    # alone is a complete web tier everywhere: from the apps' folders here, collected files in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "outreach.request_size.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]
# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

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
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60, minimum=0)
# Read-only work (admin lists of big tables, metrics) may read from a streaming replica (outreach/db_router.py,
# docs/scaling.md). Unset: the `replica` alias is the primary itself and nothing is routed to it.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
READ_REPLICA_ENABLED = bool(DATABASE_REPLICA_URL)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30.0, minimum=0)
DATABASES["replica"] = {
    **(database_config(DATABASE_REPLICA_URL) if DATABASE_REPLICA_URL else DATABASES["default"]),
    "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
    # Tests: the same test database, never created separately.
    "TEST": {"MIRROR": "default"},
}
DATABASE_ROUTERS = ["outreach.db_router.ReplicaRouter"]
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
WHITENOISE_USE_FINDERS = True  # no collectstatic step on a developer's machine; production serves collected files
# ...so a missing STATIC_ROOT is expected here (WhiteNoise would warn in every process).
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
WHITENOISE_AUTOREFRESH = False

# --- Redis and Celery -------------------------------------------------------
REDIS_URL = redis_url("REDIS_URL", "redis://127.0.0.1:6379/0")
# The Django cache is Redis, shared by every process: the API throttles count there.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "outreach-cache"}}
CELERY_BROKER_URL = redis_url("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# A message a worker took and did not acknowledge comes back after this (real seconds). Recovery after a killed
# worker does NOT wait for it: the database sweeps resume its work within about a minute (README "Recovery
# after a fault"); this is the backstop, and must exceed the longest hard time limit of an acks_late task
# (lead analysis, 55 min) plus the longest countdown (60 s), or a task still running would be handed out a
# second time. tests/test_recovery_sizing.py holds these relations.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = str(QueueName.CAMPAIGN_EXECUTION)
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
        "task": str(TaskName.SYNC_SENDER_IDENTITIES), "schedule": 600.0, "options": {"expires": 900},
    },
    # Every 20 s: with SENDING_LEASE (60 s) a dead worker's claims are recovered within 80 s.
    "messaging-recover-stale-sends": {
        "task": str(TaskName.RECOVER_STALE_SENDS), "schedule": 20.0, "options": {"expires": 30},
    },
    # Every 30 s: with the pending grace (30 s) a delivery whose processing died is retried within a minute.
    "messaging-retry-webhook-deliveries": {
        "task": str(TaskName.RETRY_WEBHOOK_DELIVERIES), "schedule": 30.0, "options": {"expires": 45},
    },
})
# Campaign engine: the dispatcher turns due scheduled_actions into Celery work (campaigns/dispatcher.py).
# Outgoing webhooks: deliveries whose retry fell due (after commit they are published at once).
CELERY_BEAT_SCHEDULE["webhooks-out-retry-due"] = {
    "task": str(TaskName.RETRY_OUTGOING_WEBHOOKS), "schedule": 30.0, "options": {"expires": 45},
}
# API: Idempotency-Key records live 24 h; hourly pruning keeps the table small.
CELERY_BEAT_SCHEDULE["tenancy-prune-idempotency-records"] = {
    "task": str(TaskName.PRUNE_IDEMPOTENCY_RECORDS), "schedule": 3600.0, "options": {"expires": 1800},
}
# Analytics: count what webhooks stored (analytics/rollups.py); freshness target 10 s.
CELERY_BEAT_SCHEDULE["analytics-rollup-pending"] = {
    "task": str(TaskName.ROLLUP_PENDING), "schedule": 2.0, "options": {"expires": 3.0},
}
CELERY_BEAT_SCHEDULE["analytics-deliverability-breaker"] = {
    "task": str(TaskName.CHECK_DELIVERABILITY), "schedule": 300.0, "options": {"expires": 450.0},
}
CELERY_BEAT_SCHEDULE["campaigns-dispatch-due"] = {
    "task": str(TaskName.DISPATCH_DUE), "schedule": 5.0, "options": {"expires": 7.5},
}
# Work whose Celery message was lost (the broker was down at commit) is published again by these sweeps:
# import jobs still queued and enrolments still without a plan this long after creation.
STALE_WORK_REQUEUE_AFTER_SECONDS = env.int("STALE_WORK_REQUEUE_AFTER_SECONDS", default=900)
CELERY_BEAT_SCHEDULE.update({
    "contacts-requeue-stale-imports": {
        "task": str(TaskName.REQUEUE_STALE_IMPORTS), "schedule": 300.0, "options": {"expires": 450},
    },
    "campaigns-requeue-stale-generation": {
        "task": str(TaskName.REQUEUE_STALE_GENERATION), "schedule": 300.0, "options": {"expires": 450},
    },
})
# Plan generation (campaigns/generation_leases.py): a job's enrolments are leased this long (real seconds), renewed
# every third of it while the worker lives; the sweep republishes those whose lease ran out (a killed worker).
PLAN_GENERATION_LEASE_SECONDS = env.int("PLAN_GENERATION_LEASE_SECONDS", default=30, minimum=3)
PLAN_GENERATION_SWEEP_SECONDS = env.int("PLAN_GENERATION_SWEEP_SECONDS", default=15, minimum=1)
CELERY_BEAT_SCHEDULE["campaigns-recover-generation-leases"] = {
    "task": str(TaskName.RECOVER_GENERATION_LEASES), "schedule": float(PLAN_GENERATION_SWEEP_SECONDS),
    "options": {"expires": PLAN_GENERATION_SWEEP_SECONDS * 1.5},
}

# Storage (docs/storage.md): time partitions are created ahead hourly, retention drops whole partitions daily.
# Days kept per partitioned table (raw webhook bodies 30, events 13 months); a partition goes once all of it
# is older. Raw-POST hashes are kept WEBHOOK_DEDUPE_DAYS to catch repeats (at least 7: SendGrid retries 72 h).
RETENTION_DAYS = {
    "webhook_deliveries": env.int("RETENTION_WEBHOOK_BODIES_DAYS", default=30, minimum=1),
    "message_events": env.int("RETENTION_EVENTS_DAYS", default=396, minimum=30),
    "campaign_transitions": env.int("RETENTION_TRANSITIONS_DAYS", default=760, minimum=30),
    "ai_calls": env.int("RETENTION_AI_CALLS_DAYS", default=396, minimum=30),
}
WEBHOOK_DEDUPE_DAYS = env.int("WEBHOOK_DEDUPE_DAYS", default=8, minimum=7)
CELERY_BEAT_SCHEDULE.update({
    "storage-ensure-partitions": {
        "task": str(TaskName.ENSURE_PARTITIONS), "schedule": 3600.0, "options": {"expires": 1800},
    },
    "storage-apply-retention": {
        "task": str(TaskName.APPLY_RETENTION), "schedule": 86400.0, "options": {"expires": 43200},
    },
})
# A claimed scheduled action not finished within this lease (a worker died) is dispatched again.
# 60 s: dispatcher passes run every second (run_dispatcher) or 5 s (beat), so a dead worker's actions are handed
# out again within about a minute; back-pressure keeps what is outstanding to half of it (README "Sizing").
CAMPAIGN_ACTION_LEASE_SECONDS = env.int("CAMPAIGN_ACTION_LEASE_SECONDS", default=60, minimum=1)
# Dispatcher back-pressure and fair share for sends (campaigns/dispatcher.py, README "Sizing delivery"): sends
# handed out and not yet sent stay between the floor and the ceiling (in between: what delivery starts within
# half a lease at its current rate), and one tenant holds at most DISPATCH_TENANT_MAX_OUTSTANDING_SENDS of them.
DISPATCH_MIN_OUTSTANDING_SENDS = env.int("DISPATCH_MIN_OUTSTANDING_SENDS", default=2000, minimum=1)
DISPATCH_MAX_OUTSTANDING_SENDS = env.int("DISPATCH_MAX_OUTSTANDING_SENDS", default=20000, minimum=1)
DISPATCH_TENANT_MAX_OUTSTANDING_SENDS = env.int("DISPATCH_TENANT_MAX_OUTSTANDING_SENDS", default=10000, minimum=1)

# --- Contacts ---------------------------------------------------------------
# CSV import (contacts.imports): the largest upload accepted, in bytes, and the most rows in one file.
CONTACT_IMPORT_MAX_BYTES = env.int("CONTACT_IMPORT_MAX_BYTES", default=20 * 1024 * 1024, minimum=1)
CONTACT_IMPORT_MAX_ROWS = env.int("CONTACT_IMPORT_MAX_ROWS", default=100_000, minimum=1)
# Request bodies (outreach.request_size): anything larger is refused with a 413 before it is read, so a
# 200 MB upload never reaches the disk. The default leaves room for a CONTACT_IMPORT_MAX_BYTES file plus its
# multipart envelope; SendGrid's webhooks have their own (events: ~768 KB batches; inbound: 30 MB mail).
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=CONTACT_IMPORT_MAX_BYTES + 1024 * 1024, minimum=1024)
SENDGRID_EVENTS_MAX_BYTES = 16 * 1024 * 1024
SENDGRID_INBOUND_MAX_BYTES = 40 * 1024 * 1024
# What of an inbound POST webhook_deliveries keeps (messaging.inbound.stored_form): the whole body up to this,
# else the fields a reply is read from, attachments dropped with a note.
SENDGRID_INBOUND_STORED_MAX_BYTES = env.int("SENDGRID_INBOUND_STORED_MAX_BYTES", default=1024 * 1024,
                                            minimum=64 * 1024)
REQUEST_MAX_BYTES_BY_PATH = {
    "/webhooks/sendgrid/events": SENDGRID_EVENTS_MAX_BYTES,
    "/webhooks/sendgrid/inbound": SENDGRID_INBOUND_MAX_BYTES,
}

# --- Providers --------------------------------------------------------------
SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="SG.local-simulator-key")
SENDGRID_API_HOST = http_url("SENDGRID_API_HOST", "http://127.0.0.1:8025")
# Base64 DER EC P-256 key of SendGrid's Signed Event Webhook; a malformed one stops start-up.
SENDGRID_WEBHOOK_PUBLIC_KEY = env.ec_public_key("SENDGRID_WEBHOOK_PUBLIC_KEY", default="")
# Signed-webhook timestamps older / further in the future than this (clock seconds) are refused as replays.
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = env.int("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", default=600, minimum=1)
SENDGRID_WEBHOOK_MAX_FUTURE_SECONDS = env.int("SENDGRID_WEBHOOK_MAX_FUTURE_SECONDS", default=300, minimum=0)
# Email validations (messaging.sendgrid.client) use their own key when SendGrid issued one; else SENDGRID_API_KEY.
SENDGRID_VALIDATION_API_KEY = env.str("SENDGRID_VALIDATION_API_KEY", default="")
# HTTP attempts of one message that ended in 5xx / refused before the message fails (messaging.delivery).
SENDGRID_SEND_MAX_ATTEMPTS = env.int("SENDGRID_SEND_MAX_ATTEMPTS", default=5, minimum=1)
# ...and only once its first failed attempt is this many hours old: a message fails after hours of being
# undeliverable, not minutes (the back-off doubles from 1 min to 1 h between attempts).
SENDGRID_UNDELIVERABLE_HOURS = env.float("SENDGRID_UNDELIVERABLE_HOURS", default=24.0, minimum=0)
# An `unknown` (ambiguous) send with no stored provider event this many clock hours after it became unknown is
# closed as failed (never resent): SendGrid retries event webhooks for 72 h, so an accepted mail has reported
# by then (messaging/delivery/unknown_bound.py).
SENDGRID_UNKNOWN_SETTLE_HOURS = env.float("SENDGRID_UNKNOWN_SETTLE_HOURS", default=73.0, minimum=0)
# The provider outage breaker (messaging/delivery/outage.py): this many consecutive 5xx / connection failures
# (any worker) open it; while open nothing is sent or counted; it probes with one request after
# SENDGRID_OUTAGE_PROBE_SECONDS, doubling up to SENDGRID_OUTAGE_PROBE_MAX_SECONDS, and closes on a 202.
SENDGRID_OUTAGE_THRESHOLD = env.int("SENDGRID_OUTAGE_THRESHOLD", default=3, minimum=1)
SENDGRID_OUTAGE_PROBE_SECONDS = env.float("SENDGRID_OUTAGE_PROBE_SECONDS", default=15.0, minimum=0.1)
SENDGRID_OUTAGE_PROBE_MAX_SECONDS = env.float("SENDGRID_OUTAGE_PROBE_MAX_SECONDS", default=120.0, minimum=0.1)
# Webhook processing (messaging.webhooks): soft bounces within the window before an address is suppressed;
# a click this soon after delivery is a link scanner's; events naming only an address reach the tenants that
# wrote to it within this many days.
SENDGRID_SOFT_BOUNCE_THRESHOLD = env.int("SENDGRID_SOFT_BOUNCE_THRESHOLD", default=3, minimum=1)
SENDGRID_SCANNER_CLICK_WINDOW_SECONDS = env.int("SENDGRID_SCANNER_CLICK_WINDOW_SECONDS", default=10, minimum=0)
SENDGRID_ADDRESS_FALLBACK_DAYS = env.int("SENDGRID_ADDRESS_FALLBACK_DAYS", default=30, minimum=1)
# Other waiting webhook deliveries one process_deliveries task folds into its transaction.
WEBHOOK_PROCESS_ABSORB_PENDING = env.int("WEBHOOK_PROCESS_ABSORB_PENDING", default=4, minimum=0)
# Delivery (messaging.delivery): a held message looks again this much later; a message left `sending` this
# long (its worker died) is re-queued or marked unknown; far above the request timeout.
SENDING_HOLD_RECHECK = dt.timedelta(seconds=env.int("SENDING_HOLD_RECHECK_SECONDS", default=15 * 60, minimum=1))
# 60 s: a batch of 500 at DELIVERY_CONCURRENCY 128 takes seconds (README "Sizing delivery"); a live batch judged
# dead loses nothing (every later write is conditional on its claim): its unstarted rows are re-queued.
SENDING_LEASE = dt.timedelta(seconds=env.int("SENDING_LEASE_SECONDS", default=60, minimum=1))
# Inbound Parse authenticates with HTTP basic auth: its URL is https://USERNAME:SECRET@host/webhooks/sendgrid/inbound.
SENDGRID_INBOUND_SECRET = secret_setting("SENDGRID_INBOUND_SECRET", local_mode=OUTREACH_LOCAL_MODE)
SENDGRID_INBOUND_USERNAME = env.str("SENDGRID_INBOUND_USERNAME", default="inbound")
# Deprecated: also accept the secret in the URL path (/webhooks/sendgrid/inbound/SECRET), where it lands in every
# access log. Off unless set; for an Inbound Parse setting not yet moved to basic auth.
SENDGRID_INBOUND_SECRET_IN_PATH = env.bool("SENDGRID_INBOUND_SECRET_IN_PATH", default=False)
SENDGRID_REQUEST_TIMEOUT_SECONDS = env.float("SENDGRID_REQUEST_TIMEOUT_SECONDS", default=10.0, minimum=0.1)
# Concurrent delivery (issue 19; README "Sizing delivery"). Requests one delivery worker process keeps in
# flight at once (its thread pool and its keep-alive connection pool to SendGrid): processes x this should be
# >= 1.3 x send rate x provider latency.
DELIVERY_CONCURRENCY = env.int("DELIVERY_CONCURRENCY", default=128, minimum=1)
# Of those, at most this many for one sender identity, so one sender's burst leaves room for the others.
DELIVERY_SENDER_CONCURRENCY = env.int("DELIVERY_SENDER_CONCURRENCY", default=64, minimum=1)
# A pooled connection idle longer than this is dropped before reuse (well under SendGrid's keep-alive timeout).
SENDGRID_POOL_IDLE_SECONDS = env.float("SENDGRID_POOL_IDLE_SECONDS", default=4.0, minimum=0.0)
# Send rate limits (send_rate_limits, messaging/rate_limits.py): how long a process reuses a tenant's limits
# before reading them again, so an admin edit is enforced within this many seconds.
SEND_RATE_LIMITS_CACHE_SECONDS = env.float("SEND_RATE_LIMITS_CACHE_SECONDS", default=5.0, minimum=0)
# Delivery tells the engine a batch's outcomes after the batch; the stale-send sweep (recover_stale_sends) feeds
# again any sent / suppressed / failed message whose contact campaign has not heard this many clock seconds later.
LOST_SEND_EVENTS_GRACE_SECONDS = env.int("LOST_SEND_EVENTS_GRACE_SECONDS", default=60, minimum=0)
# How far back (clock time, scaled by CLOCK_SPEED) the lost-event sweep looks for settled messages.
LOST_SEND_EVENTS_LOOKBACK = dt.timedelta(
    seconds=env.int("LOST_SEND_EVENTS_LOOKBACK_SECONDS", default=6 * 3600, minimum=1))

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = http_url("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0, minimum=0.1)
# AI client (outreach/ai/client.py): our own bounded retries, and per-tenant caps so one tenant's
# bulk import cannot take all AI capacity from the others.
AI_MAX_ATTEMPTS = env.int("AI_MAX_ATTEMPTS", default=4, minimum=1)
AI_BACKOFF_BASE_SECONDS = env.float("AI_BACKOFF_BASE_SECONDS", default=0.5, minimum=0)
AI_BACKOFF_MAX_SECONDS = env.float("AI_BACKOFF_MAX_SECONDS", default=20.0, minimum=0)
AI_RETRY_AFTER_MAX_SECONDS = env.float("AI_RETRY_AFTER_MAX_SECONDS", default=30.0, minimum=0)
AI_TENANT_CONCURRENCY = env.int("AI_TENANT_CONCURRENCY", default=4, minimum=1)
AI_TENANT_RATE_PER_MINUTE = env.float("AI_TENANT_RATE_PER_MINUTE", default=120.0, minimum=0.001)
AI_TENANT_BURST = env.int("AI_TENANT_BURST", default=20, minimum=1)
AI_ACQUIRE_WAIT_SECONDS = env.float("AI_ACQUIRE_WAIT_SECONDS", default=30.0, minimum=0)
# A tenant's AI spend per calendar month (UTC), USD as estimated from AI_MODEL_PRICES; 0 = no cap. At the cap
# every AI call of the tenant is refused (plans come from the built-in planner) and its admins get one alert.
AI_TENANT_MONTHLY_BUDGET_USD = env.float("AI_TENANT_MONTHLY_BUDGET_USD", default=0.0, minimum=0)
# Per-tenant overrides of the caps: JSON {"<tenant id>": {"concurrency": 8, "rate_per_minute": 600, "burst": 50,
# "monthly_budget_usd": 200}}.
AI_TENANT_CAPS: dict[int, dict] = env.tenant_caps("AI_TENANT_CAPS")
# Prices (USD per million prompt / completion tokens) added to or replacing the built-in table of
# outreach/ai/client.py, by model-name prefix: JSON {"gpt-4.1": ["2.00", "8.00"]}.
AI_MODEL_PRICES: dict[str, tuple[str, str]] = env.model_prices("AI_MODEL_PRICES")

PUBLIC_BASE_URL = http_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
FLOWER_URL = http_url("FLOWER_URL", "http://127.0.0.1:5555")

# Compliance: soft-bounce suppressions expire; phone numbers without a country code get this one.
SUPPRESSION_SOFT_BOUNCE_HOURS = env.float("SUPPRESSION_SOFT_BOUNCE_HOURS", default=72, minimum=1)
PHONE_DEFAULT_COUNTRY_CODE = env.matching("PHONE_DEFAULT_COUNTRY_CODE", default="1", pattern=r"\+?[1-9][0-9]{0,2}",
                                          expected="a calling code such as 1, 44 or +49")
UNSUBSCRIBE_MAILTO_DOMAIN = env.str("UNSUBSCRIBE_MAILTO_DOMAIN", default="")  # default: PUBLIC_BASE_URL's host
# The domain whose MX is SendGrid Inbound Parse. When set, every sender identity's Reply-To is issued by the
# system as reply+<signed tenant token>@INBOUND_REPLY_DOMAIN and replies are matched by that token first.
INBOUND_REPLY_DOMAIN = env.str("INBOUND_REPLY_DOMAIN", default="").strip().lower()
# A reply Inbound Parse scores at or above this (SpamAssassin's score; 5.0 is SpamAssassin's own
# required_score) is held for review and moves no plan (messaging.inbound.verdicts).
INBOUND_SPAM_SCORE_HOLD = env.float("INBOUND_SPAM_SCORE_HOLD", default=5.0)

# Global emergency stop from the environment (an operator can also flip the DB switch).
# Analytics: the zone of a tenant's days unless analytics_tenant_settings names one.
ANALYTICS_DEFAULT_TIME_ZONE = env.str("ANALYTICS_DEFAULT_TIME_ZONE", default="UTC")
# Deliverability breaker (analytics/breaker.py): rolling window, minimum volumes, warning and pause lines. Defaults
# from the mailbox providers' bulk-sender rules: spam complaints under 0.3% (0.1% the warning line), bounces 2-5%.
BREAKER_WINDOW_DAYS = env.int("BREAKER_WINDOW_DAYS", default=7, minimum=1)
BREAKER_MIN_VOLUME = env.int("BREAKER_MIN_VOLUME", default=200, minimum=1)
BREAKER_BOUNCE_WARNING = env.float("BREAKER_BOUNCE_WARNING", default=0.02, minimum=0)
BREAKER_BOUNCE_PAUSE = env.float("BREAKER_BOUNCE_PAUSE", default=0.05, minimum=0)
BREAKER_SPAM_WARNING = env.float("BREAKER_SPAM_WARNING", default=0.001, minimum=0)
BREAKER_SPAM_PAUSE = env.float("BREAKER_SPAM_PAUSE", default=0.003, minimum=0)
# GET /metrics (Prometheus) answers only `Authorization: Bearer <METRICS_TOKEN>`; empty: the endpoint is off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# GET /health/ fails (503) when the oldest uncounted event is older than this.
HEALTH_MAX_ROLLUP_LAG_SECONDS = env.int("HEALTH_MAX_ROLLUP_LAG_SECONDS", default=300, minimum=1)
OUTREACH_SENDING_STOPPED = env.bool("OUTREACH_SENDING_STOPPED", default=False)

# The virtual clock (outreach.clock): production refuses anything but 1.
CLOCK_SPEED = env.float("CLOCK_SPEED", default=1.0, minimum=0.001)

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
    # Per caller and per tenant, counted in Redis (outreach/tenancy/throttling.py); a 429 carries Retry-After.
    "DEFAULT_THROTTLE_CLASSES": [
        "outreach.tenancy.throttling.CallerRateThrottle",
        "outreach.tenancy.throttling.TenantRateThrottle",
    ],
    # DRF's three parsers, JSON with a nesting limit (outreach/parsers.py): deep JSON is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "outreach.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# API throttles: requests per API key (or staff session), and per tenant across all its keys and users.
_RATE = r"[1-9][0-9]*/(second|minute|hour|day)"
API_THROTTLE_RATE_PER_KEY = env.matching("API_THROTTLE_RATE_PER_KEY", default="1200/minute", pattern=_RATE,
                                         expected="<requests>/<second|minute|hour|day>, e.g. 1200/minute")
API_THROTTLE_RATE_PER_TENANT = env.matching("API_THROTTLE_RATE_PER_TENANT", default="3000/minute", pattern=_RATE,
                                            expected="<requests>/<second|minute|hour|day>, e.g. 3000/minute")
# Admin login throttling (django-axes): this many failed logins of one username from one address lock that
# pair out for AXES_COOLOFF_MINUTES (a 429 page); a success resets the count. Operators unlock in the admin.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Reverse proxies in front of the web processes (0: none). With N, the client address is the N-th entry from
# the right of X-Forwarded-For (outreach/client_ip.py); without it a load balancer's address would be
# everyone's and one person's wrong passwords would lock all operators out.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "outreach.client_ip.client_ip"
# No banner on every process start (commands promise one line on stderr); lockouts are still logged.
AXES_VERBOSE = False
# Deepest nesting of a JSON request body the API parses (a plan, the deepest body, nests well under 20).
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32, minimum=2)
SPECTACULAR_SETTINGS = {
    "TITLE": "Outreach API",
    "DESCRIPTION": "AI-planned multi-step outreach: leads, contacts, campaigns, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page loads Swagger UI from this project's static files (drf-spectacular-sidecar): it works
    # offline and behind a strict firewall, and no third-party host sees who reads the docs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every error response in the one error shape (outreach/api_schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "outreach.api_schema.add_error_responses"],
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
    # Secrets (the inbound mail secret, basic auth credentials) never reach a log line: outreach.log_redaction.
    "filters": {"redact_secrets": {"()": "outreach.log_redaction.SecretRedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.choice("LOG_LEVEL", default="INFO",
                                                        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))},
}
