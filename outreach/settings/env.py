"""Reading the environment: one place, loud failures.

Every variable the system reads is listed in `.env.example`. A value that is
present but malformed stops the process at start-up with a message naming the
variable, rather than letting a typo surface later as a confusing runtime error.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
_dotenv = BASE_DIR / ".env"
if _dotenv.exists():
    environ.Env.read_env(str(_dotenv))

_DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}


def _redacted(url: str) -> str:
    """The URL with any password replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def database_config(url: str) -> dict:
    """Parse DATABASE_URL, refusing anything that is not a usable PostgreSQL URL."""
    parts = urlsplit(url)
    shown = _redacted(url)
    if parts.scheme not in _DATABASE_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed: expected postgres://user@host:port/name, got scheme "
            f"{parts.scheme!r} in {shown!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: bad port in {shown!r}") from exc
    if not parts.hostname and not parts.path.strip("/"):
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: no host or database name in {shown!r}")
    if not parts.path.strip("/"):
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: no database name in {shown!r}")
    config = environ.Env.db_url_config(url)
    config["ENGINE"] = "django.db.backends.postgresql"
    return config


def redis_url(name: str, default: str) -> str:
    value = env.str(name, default=default)
    if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} is malformed: expected redis://host:port/db, got {value!r}")
    return value


def http_url(name: str, default: str) -> str:
    value = env.str(name, default=default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ImproperlyConfigured(f"{name} is malformed: expected an http(s) URL, got {value!r}")
    return value


def database_url(db: dict) -> str:
    """postgres://user:password@host:port/name from a Django DATABASES entry (the inverse of database_config),
    for child processes that must use the same database."""
    from urllib.parse import quote

    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"
