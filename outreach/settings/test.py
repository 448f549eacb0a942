"""Settings for the test suite: the real PostgreSQL and Redis, fast hashing."""
from outreach.settings.base import *  # noqa: F401,F403
from outreach.settings.base import env, redis_url

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests use their own Redis database so they never consume a developer's queues.
REDIS_URL = redis_url("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
SENDGRID_API_KEY = "SG.test-key"
OPENAI_API_KEY = env.str("TEST_OPENAI_API_KEY", default="")
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
