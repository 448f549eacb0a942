"""Reading the environment: one place, typed, loud failures.

Every variable the system reads is listed in `.env.example` and read through `env` below, typed where it
is defined: `env.str / .bool / .int / .float / .list / .dict / .choice / .matching / .tenant_caps / .model_prices /
.ec_public_key`, plus `redis_url`,
`http_url` and `database_config`. A value that is present but malformed stops the process at start-up
with an ImproperlyConfigured naming the variable and the value, rather than letting a typo surface later
as a confusing runtime error (`CLOCK_SPEED=abc`) or be read as something else (`DEBUG=maybe`).

An empty value (`NAME=` in a .env file or a compose file) counts as unset for every kind but `str`.
"""
from __future__ import annotations

import base64
import builtins
import json
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import environ
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

_dotenv = BASE_DIR / ".env"
if _dotenv.exists():
    environ.Env.read_env(str(_dotenv))

_CAP_KEYS = frozenset({"concurrency", "rate_per_minute", "burst", "monthly_budget_usd"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _decimal(value: Any) -> bool:
    try:
        return Decimal(str(value)) >= 0
    except InvalidOperation:
        return False


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


class Env:
    """Typed readers of environment variables; `default=REQUIRED` (the default) refuses to start without one."""

    def _raw(self, name: str, default: Any, *, empty_is_unset: bool = True) -> builtins.str | None:
        value = os.environ.get(name)
        if value is None or (empty_is_unset and value.strip() == ""):
            if default is REQUIRED:
                raise ImproperlyConfigured(f"Set the {name} environment variable")
            return None
        return value

    @staticmethod
    def _bad(name: str, value: builtins.str, expected: builtins.str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{name} is malformed: expected {expected}, got {value!r}")

    def str(self, name: builtins.str, default: Any = REQUIRED) -> builtins.str:
        value = self._raw(name, default, empty_is_unset=False)
        return default if value is None else value

    def bool(self, name: builtins.str, default: Any = REQUIRED) -> builtins.bool:
        value = self._raw(name, default)
        if value is None:
            return default
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise self._bad(name, value, "true/false, 1/0, yes/no or on/off")

    def int(self, name: builtins.str, default: Any = REQUIRED, *, minimum: builtins.int | None = None
            ) -> builtins.int:
        value = self._raw(name, default)
        if value is None:
            return default
        try:
            number = builtins.int(value.strip())
        except ValueError:
            raise self._bad(name, value, "a whole number") from None
        if minimum is not None and number < minimum:
            raise self._bad(name, value, f"a whole number of at least {minimum}")
        return number

    def float(self, name: builtins.str, default: Any = REQUIRED, *, minimum: builtins.float | None = None
              ) -> builtins.float:
        value = self._raw(name, default)
        if value is None:
            return default if default is None else builtins.float(default)
        try:
            number = builtins.float(value.strip())
        except ValueError:
            raise self._bad(name, value, "a number") from None
        if number != number or number in (builtins.float("inf"), builtins.float("-inf")):
            raise self._bad(name, value, "a finite number")
        if minimum is not None and number < minimum:
            raise self._bad(name, value, f"a number of at least {minimum}")
        return number

    def list(self, name: builtins.str, default: Any = REQUIRED) -> builtins.list[builtins.str]:
        """Comma-separated values, each stripped; empty items are dropped."""
        value = self._raw(name, default)
        if value is None:
            return builtins.list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def dict(self, name: builtins.str, default: Any = REQUIRED) -> builtins.dict[builtins.str, Any]:
        """A JSON object."""
        value = self._raw(name, default)
        if value is None:
            return builtins.dict(default)
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, builtins.dict):
            raise self._bad(name, value, "a JSON object")
        return parsed

    def choice(self, name: builtins.str, default: Any = REQUIRED, *, choices: tuple[builtins.str, ...]
               ) -> builtins.str:
        """One of `choices`, compared case-insensitively and returned as spelled in `choices`."""
        value = self._raw(name, default)
        if value is None:
            return default
        by_upper = {c.upper(): c for c in choices}
        if value.strip().upper() not in by_upper:
            raise self._bad(name, value, "one of " + ", ".join(choices))
        return by_upper[value.strip().upper()]

    def matching(self, name: builtins.str, default: Any = REQUIRED, *, pattern: builtins.str,
                 expected: builtins.str) -> builtins.str:
        """A string that matches the regular expression `pattern` as a whole (`expected` says it in words)."""
        value = self._raw(name, default)
        if value is None:
            return default
        if not re.fullmatch(pattern, value.strip()):
            raise self._bad(name, value, expected)
        return value.strip()

    def tenant_caps(self, name: builtins.str) -> builtins.dict[builtins.int, builtins.dict[builtins.str, Any]]:
        """JSON {"<tenant id>": {"concurrency": 8, "rate_per_minute": 600, "burst": 50, "monthly_budget_usd": 200}},
        each part optional."""
        raw = self.dict(name, default={})
        caps: builtins.dict[builtins.int, builtins.dict[builtins.str, Any]] = {}
        for tenant_id, values in raw.items():
            if not (tenant_id.isdigit() and isinstance(values, builtins.dict)
                    and set(values) <= _CAP_KEYS and all(_positive_number(v) for v in values.values())):
                raise self._bad(name, json.dumps({tenant_id: values}),
                                'a JSON object of tenant ids to {"concurrency", "rate_per_minute", "burst", '
                                '"monthly_budget_usd"} '
                                "positive numbers")
            caps[builtins.int(tenant_id)] = values
        return caps

    def model_prices(self, name: builtins.str) -> builtins.dict[builtins.str, tuple[builtins.str, builtins.str]]:
        """JSON {"<model prefix>": ["<USD per M prompt tokens>", "<USD per M completion tokens>"]}."""
        raw = self.dict(name, default={})
        prices: builtins.dict[builtins.str, tuple[builtins.str, builtins.str]] = {}
        for model, pair in raw.items():
            if not (isinstance(pair, builtins.list) and len(pair) == 2 and all(_decimal(p) for p in pair)):
                raise self._bad(name, json.dumps({model: pair}),
                                'a JSON object of model prefixes to ["<prompt price>", "<completion price>"]')
            prices[model] = (builtins.str(pair[0]), builtins.str(pair[1]))
        return prices

    def ec_public_key(self, name: builtins.str, default: Any = REQUIRED) -> builtins.str:
        """A base64 DER EC P-256 public key (SendGrid's Signed Event Webhook key), kept as the text given."""
        value = self._raw(name, default)
        if value is None:
            return default
        try:
            ec_p256_public_key(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} is not a base64 DER EC P-256 public key: {exc}") from exc
        return value


def ec_p256_public_key(public_key_b64: builtins.str) -> ec.EllipticCurvePublicKey:
    """Load a base64 DER public key; ValueError unless it is an EC key on P-256."""
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64.strip()))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an EC P-256 public key")
    return key


env = Env()

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
    value = env.str(name, default=default).strip()
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
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"
