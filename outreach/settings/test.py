"""Settings for the test suite: the real PostgreSQL and Redis, fast hashing."""
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

# The suite is a local mode (outreach/settings/local_secrets.py); the processes it starts inherit it.
os.environ.setdefault("OUTREACH_LOCAL_MODE", "1")

from outreach.settings.base import *  # noqa: F401,F403
from outreach.settings.base import env, redis_url  # noqa: E402


def _per_worker_redis_url(url: str) -> str:
    """Each pytest-xdist worker gets its own Redis database (base + worker number).

    Tests inspect and purge broker queues; two workers sharing one database would
    see each other's messages.
    """
    # Set by pytest-xdist in its workers, not by an operator: read as is, not through `env`.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    # Tests purge and flush their databases: never wrap round onto 0, the development default, and keep
    # one database below the base free for the end-to-end test's processes.
    if base < 2:
        raise ImproperlyConfigured(
            f"TEST_REDIS_URL must name a Redis database of 2 or more (tests flush it), got {url}"
        )
    if not worker.startswith("gw"):
        return url
    number = base + int(worker[2:])
    if number > 15:
        raise ImproperlyConfigured(
            f"TEST_REDIS_URL's database {base} plus xdist worker {worker} is past Redis database 15; choose a lower one"
        )
    return urlunsplit(parts._replace(path=f"/{number}"))


DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests use their own Redis databases so they never consume a developer's queues.
TEST_REDIS_BASE_URL = redis_url("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
REDIS_URL = _per_worker_redis_url(TEST_REDIS_BASE_URL)
CELERY_BROKER_URL = REDIS_URL
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "outreach-test-cache"}}
# The suite calls the API far faster than any client may: throttling is proven with low rates in its own test.
API_THROTTLE_RATE_PER_KEY = "1000000/minute"
API_THROTTLE_RATE_PER_TENANT = "1000000/minute"
# Random per run: the simulators the tests start accept this key alone (simulators.sendgrid.server).
SENDGRID_API_KEY = f"SG.test-{secrets.token_urlsafe(16)}"
OPENAI_API_KEY = env.str("TEST_OPENAI_API_KEY", default="")
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
