"""Settings read the environment and refuse bad values loudly; production settings pass Django's deploy checks."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from outreach.settings.env import database_config
from simulators.sendgrid.signing import generate_key_pair

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_DIR = ROOT / "outreach" / "settings"
# env.str("X"...), env.bool("X"...), env("X"...), redis_url("X"...), http_url("X"...)
GOOD_KEY = secrets.token_urlsafe(64)
GOOD = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "outreach.example.com",
        "SENDGRID_INBOUND_SECRET": secrets.token_urlsafe(24), "SENDGRID_API_KEY": "SG.a-real-looking-key",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": generate_key_pair()[1], "PUBLIC_BASE_URL": "https://outreach.example.com"}
ENV_READ = re.compile(r"""\b(?:env(?:\.\w+)?|redis_url|http_url)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    unset = ("SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "CLOCK_SPEED", "SENDGRID_INBOUND_SECRET",
             "SENDGRID_API_KEY", "SENDGRID_WEBHOOK_PUBLIC_KEY", "OUTREACH_LOCAL_MODE", "PUBLIC_BASE_URL")
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(env)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("url, problem", [
    ("mysql://x", "scheme 'mysql'"),
    ("sqlite:///db.sqlite3", "scheme 'sqlite'"),
    ("", "scheme ''"),
    ("127.0.0.1:5432/outreach", "scheme"),
    ("postgres://postgres@127.0.0.1:notaport/outreach", "bad port"),
    ("postgres://postgres@127.0.0.1:5432", "no database name"),
    ("postgres://postgres@127.0.0.1:5432/", "no database name"),
    ("postgres://", "no host or database name"),
])
def test_a_malformed_database_url_is_refused_with_a_message_naming_it(url: str, problem: str):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        database_config(url)
    message = str(excinfo.value)
    assert message.startswith("DATABASE_URL is malformed")
    assert problem in message


def test_a_postgres_url_becomes_a_postgresql_database_config():
    config = database_config("postgresql://app:s3cret@db.internal:6432/outreach_prod")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == (
        "outreach_prod", "app", "s3cret", "db.internal", 6432)


@pytest.mark.slow
def test_manage_py_refuses_to_start_with_a_mysql_database_url():
    result = _run(["manage.py", "check"], DATABASE_URL="mysql://x", DJANGO_SETTINGS_MODULE="outreach.settings.base",
                  OUTREACH_LOCAL_MODE="1")

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "DATABASE_URL is malformed" in last_line
    assert "'mysql'" in last_line


@pytest.mark.slow
def test_production_settings_pass_the_deploy_checks():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG",
                   "--settings=outreach.settings.production"], **GOOD)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env, message", [
    ({k: v for k, v in GOOD.items() if k != "SECRET_KEY"}, "SECRET_KEY"),
    ({**GOOD, "SECRET_KEY": "dev-insecure-secret-key-change-me"}, "SECRET_KEY must be"),
    ({**GOOD, "SECRET_KEY": "x" * 64}, "SECRET_KEY must be"),
    ({k: v for k, v in GOOD.items() if k != "ALLOWED_HOSTS"}, "ALLOWED_HOSTS"),
    ({k: v for k, v in GOOD.items() if k != "SENDGRID_INBOUND_SECRET"}, "SENDGRID_INBOUND_SECRET must be"),
    ({**GOOD, "CLOCK_SPEED": "3600"}, "CLOCK_SPEED must be 1"),
    ({**GOOD, "SENDGRID_API_KEY": "SG.local-simulator-key"}, "SENDGRID_API_KEY must be"),
    ({k: v for k, v in GOOD.items() if k != "SENDGRID_WEBHOOK_PUBLIC_KEY"}, "SENDGRID_WEBHOOK_PUBLIC_KEY must be set"),
    ({**GOOD, "SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"}, "SENDGRID_WEBHOOK_PUBLIC_KEY is not"),
    ({**GOOD, "SENDGRID_INBOUND_SECRET": "dev-inbound-secret"}, "SENDGRID_INBOUND_SECRET must be"),
    ({k: v for k, v in GOOD.items() if k != "PUBLIC_BASE_URL"}, "PUBLIC_BASE_URL must be"),
    ({**GOOD, "PUBLIC_BASE_URL": "http://outreach.example.com"}, "PUBLIC_BASE_URL must be"),
    ({**GOOD, "OUTREACH_LOCAL_MODE": "1"}, "OUTREACH_LOCAL_MODE must be off in production"),
])
def test_production_settings_refuse_to_start_without_safe_values(env: dict[str, str], message: str):
    result = _run(["-c", "import outreach.settings.production"], **env)

    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1]


FORGE = ("import django; django.setup(); from django.core import signing; "
         "token = signing.dumps('unsubscribe me', key='dev-insecure-secret-key-change-me'); "
         "print(signing.loads(token))")


@pytest.mark.slow
@pytest.mark.parametrize("entry_point", [
    ["manage.py", "check"],
    ["-c", "import outreach.wsgi"],
    ["-c", "import outreach.celery, django; django.setup()"],
])
@pytest.mark.parametrize("secret", ["SECRET_KEY", "SENDGRID_INBOUND_SECRET"])
def test_entry_points_refuse_to_start_without_their_secrets_outside_local_mode(entry_point, secret):
    others = {"SECRET_KEY": GOOD_KEY, "SENDGRID_INBOUND_SECRET": secrets.token_urlsafe(24)}
    others.pop(secret)
    result = _run(entry_point, **others)

    assert result.returncode != 0
    assert f"{secret} must be set" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_schema_only_command_runs_on_a_bare_machine_without_secrets():
    # Nothing makemigrations does signs: it runs on a throwaway secret instead of refusing (or crashing).
    result = _run(["manage.py", "makemigrations", "--check", "--dry-run"])

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.slow
def test_a_command_refused_for_a_missing_secret_says_so_in_one_line_without_a_traceback():
    result = _run(["manage.py", "migrate", "--plan"], SENDGRID_INBOUND_SECRET=secrets.token_urlsafe(24))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("manage.py: SECRET_KEY must be set")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["0", "1"])
@pytest.mark.parametrize("secret, value", [("SECRET_KEY", "dev-insecure-secret-key-change-me"),
                                           ("SENDGRID_INBOUND_SECRET", "dev-inbound-secret")])
def test_the_old_public_defaults_are_refused_even_in_local_mode(mode, secret, value):
    result = _run(["manage.py", "check"], OUTREACH_LOCAL_MODE=mode, **{"SECRET_KEY": GOOD_KEY, secret: value})

    assert result.returncode != 0
    assert f"{secret} must be a secret of your own" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_token_forged_with_the_old_default_key_is_refused_in_local_mode():
    result = _run(["-c", FORGE], DJANGO_SETTINGS_MODULE="outreach.settings.base", OUTREACH_LOCAL_MODE="1")

    assert result.returncode != 0
    assert "BadSignature" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_local_mode_processes_share_one_generated_secret():
    show = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    first, second = (_run(["-c", show], DJANGO_SETTINGS_MODULE="outreach.settings.base", OUTREACH_LOCAL_MODE="1")
                     for _ in range(2))

    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key == second.stdout.strip() and len(key) >= 50 and not key.startswith("dev-")


def test_env_example_and_readme_list_every_variable_the_settings_read():
    read = {name for path in SETTINGS_DIR.glob("*.py") for name in ENV_READ.findall(path.read_text())}
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "OPENAI_API_KEY"} <= read  # the pattern works
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    readme = (ROOT / "README.md").read_text()
    assert read - listed == set(), "add these to .env.example"
    assert {name for name in read if f"`{name}`" not in readme} == set(), "add these to the README table"


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # --check exits non-zero (SystemExit, failing this test) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.slow
@pytest.mark.parametrize("redis_db, worker, message", [
    ("1", "", "must name a Redis database of 2 or more"),
    ("0", "gw1", "must name a Redis database of 2 or more"),
    ("15", "gw1", "past Redis database 15"),
])
def test_test_settings_never_put_the_suite_on_a_developers_redis_database(redis_db, worker, message):
    env = {"TEST_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}"}
    if worker:
        env["PYTEST_XDIST_WORKER"] = worker
    result = _run(["-c", "import outreach.settings.test"], **env)

    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1]


def test_each_xdist_worker_gets_its_own_redis_database():
    result = _run(["-c", "import outreach.settings.test as s; print(s.REDIS_URL, s.CELERY_BROKER_URL)"],
                  TEST_REDIS_URL="redis://127.0.0.1:6379/12", PYTEST_XDIST_WORKER="gw1")

    assert result.stdout.split() == ["redis://127.0.0.1:6379/13", "redis://127.0.0.1:6379/13"], result.stderr
