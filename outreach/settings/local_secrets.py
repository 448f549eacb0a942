"""Secrets of the settings: never a public default; generated only in an explicit local mode.

`manage.py`, `wsgi.py` and `outreach/celery.py` load the base settings unless told otherwise. Those used to
fall back on a SECRET_KEY and an inbound secret written in this repository, so anything started without
configuration signed sessions, CSRF tokens and unsubscribe links with a key anyone could read (a token
forged with it was accepted). Now a secret comes from the environment, or, only when OUTREACH_LOCAL_MODE=1
says this is a developer's machine (`make run`, `make demo`, scripts/*.sh, the test suite), from a file
generated once per checkout (var/local-secrets.json, mode 0600, ignored by git and docker), so every local
process (web, worker, beat) shares it and links stay valid across restarts. The old public values are
refused everywhere, local mode included.

One exception, for commands that only read or write the schema or the static files (`makemigrations --check`
on a bare machine, the Dockerfile's `collectstatic`): nothing they do signs anything, so `manage.py` lets them
run on a random secret of their own process (`allow_throwaway_secrets_for`), never a public one.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from outreach.settings.env import BASE_DIR, env

LOCAL_SECRETS_FILE = BASE_DIR / "var" / "local-secrets.json"
# Values once shipped as defaults in this repository: known to everyone, so never a secret.
PUBLIC_DEFAULTS = {
    "SECRET_KEY": frozenset({"dev-insecure-secret-key-change-me"}),
    "SENDGRID_INBOUND_SECRET": frozenset({"dev-inbound-secret"}),
}


# What these commands do never signs, serves or sends (migrate is not one: a data migration signs reply addresses).
SCHEMA_ONLY_COMMANDS = frozenset({"makemigrations", "showmigrations", "sqlmigrate", "collectstatic"})
_throwaway_allowed = False


def allow_throwaway_secrets_for(command: str) -> None:
    """Called by manage.py before the settings load: a schema-only command may run without configured secrets."""
    global _throwaway_allowed
    _throwaway_allowed = command in SCHEMA_ONLY_COMMANDS


def _read_or_create(path: Path) -> dict[str, str]:
    """The checkout's generated secrets; created atomically, so processes starting together agree."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {name: secrets.token_urlsafe(64) for name in PUBLIC_DEFAULTS}
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(generated, handle)
    try:
        os.link(scratch, path)  # fails if another process got there first: then its secrets win
    except FileExistsError:
        pass
    finally:
        scratch.unlink()
    return json.loads(path.read_text())


def secret_setting(name: str, *, local_mode: bool) -> str:
    """The secret `name` from the environment; generated in local mode; otherwise a readable refusal."""
    value = env.str(name, default="")
    if value in PUBLIC_DEFAULTS[name]:
        raise ImproperlyConfigured(
            f"{name} must be a secret of your own: {value!r} is the public development default")
    if value:
        return value
    if not local_mode and _throwaway_allowed:
        return secrets.token_urlsafe(64)
    if not local_mode:
        raise ImproperlyConfigured(
            f"{name} must be set (a long random string: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(64))'), or run with OUTREACH_LOCAL_MODE=1 on a development "
            "machine (make run and make demo do) to use a generated one")
    return _read_or_create(LOCAL_SECRETS_FILE)[name]
