"""Settings are typed where they are defined and fail loudly: a malformed value stops start-up with an
ImproperlyConfigured naming the variable and the value (outreach/settings/env.py)."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

from outreach.settings.env import env, http_url, redis_url

ROOT = Path(__file__).resolve().parent.parent
NAME = "OUTREACH_TEST_ENV_VALUE"


def _public_key(curve: ec.EllipticCurve) -> str:
    der = ec.generate_private_key(curve).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def given(monkeypatch):
    def set_value(value: str) -> None:
        monkeypatch.setenv(NAME, value)
    return set_value


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False), (" yes ", True),
])
def test_bool_accepts_the_usual_spellings_case_insensitively(given, value, expected):
    given(value)
    assert env.bool(NAME, default=not expected) is expected


@pytest.mark.parametrize("reader, value", [
    (env.bool, "maybe"), (env.bool, "tru"), (env.bool, "2"),
    (env.int, "abc"), (env.int, "1.5"), (env.int, "12 seconds"),
    (env.float, "abc"), (env.float, "nan"), (env.float, "inf"),
    (env.dict, "not json"), (env.dict, "[1, 2]"),
    (env.ec_public_key, "bm90IGEga2V5"), (env.ec_public_key, "%%%"),
    (env.ec_public_key, _public_key(ec.SECP384R1())),
])
def test_a_malformed_value_is_refused_naming_the_variable_and_the_value(given, reader, value):
    given(value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        reader(NAME, default=None)
    assert NAME in str(excinfo.value)
    assert "EC P-256" in str(excinfo.value) or repr(value) in str(excinfo.value)


@pytest.mark.parametrize("reader, value", [(redis_url, "http://x"), (http_url, "ftp://x"), (http_url, "nohost")])
def test_a_malformed_url_is_refused_naming_the_variable(given, reader, value):
    given(value)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        reader(NAME, "redis://127.0.0.1:6379/0" if reader is redis_url else "http://127.0.0.1")


def test_minimums_are_enforced(given):
    given("0")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} is malformed: expected a whole number of at least 1"):
        env.int(NAME, default=5, minimum=1)


def test_well_formed_values_are_typed(given):
    given(" 42 ")
    assert env.int(NAME, default=0) == 42 and env.float(NAME, default=0.0) == 42.0 and env.str(NAME) == " 42 "
    given("a.example, b.example,,")
    assert env.list(NAME, default=[]) == ["a.example", "b.example"]
    given('{"7": {"concurrency": 2}}')
    assert env.dict(NAME, default={}) == {"7": {"concurrency": 2}}
    key = _public_key(ec.SECP256R1())
    given(key)
    assert env.ec_public_key(NAME, default="") == key


def test_unset_and_empty_take_the_default_and_a_required_one_is_refused(monkeypatch, given):
    monkeypatch.delenv(NAME, raising=False)
    assert env.bool(NAME, default=True) is True and env.int(NAME, default=3) == 3
    given("")
    assert env.float(NAME, default=1.5) == 1.5 and env.str(NAME, default="x") == ""
    monkeypatch.delenv(NAME)
    with pytest.raises(ImproperlyConfigured, match=f"Set the {NAME} environment variable"):
        env.int(NAME)


def _django_setup(**variables: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "outreach.settings.base", **variables}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("variable, value", [
    ("CLOCK_SPEED", "abc"),
    ("DEBUG", "maybe"),
    ("DB_CONN_MAX_AGE", "sixty"),
    ("OUTREACH_SENDING_STOPPED", "perhaps"),
    ("AI_TENANT_CAPS", "{not json"),
    ("SENDGRID_WEBHOOK_PUBLIC_KEY", "bm90IGEga2V5"),
    ("OPENAI_BASE_URL", "api.openai.com"),
    ("AI_TENANT_CAPS", '{"x": {}}'),
    ("AI_TENANT_CAPS", '{"3": {"concurrency": 0}}'),
    ("AI_MODEL_PRICES", '{"gpt": 5}'),
    ("LOG_LEVEL", "verbose"),
    ("DB_CONN_MAX_AGE", "-5"),
    ("SENDGRID_REQUEST_TIMEOUT_SECONDS", "-3"),
    ("SUPPRESSION_SOFT_BOUNCE_HOURS", "-5"),
    ("AI_MAX_ATTEMPTS", "0"),
    ("PHONE_DEFAULT_COUNTRY_CODE", "abc"),
])
def test_a_malformed_value_stops_start_up_with_a_message_naming_the_variable(variable, value):
    result = _django_setup(**{variable: value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:"), last_line
    assert variable in last_line


def test_structured_values_are_read_into_their_types(given):
    given('{"7": {"concurrency": 8, "burst": 50}}')
    assert env.tenant_caps(NAME) == {7: {"concurrency": 8, "burst": 50}}
    given('{"gpt-4.1": ["2.00", 8]}')
    assert env.model_prices(NAME) == {"gpt-4.1": ("2.00", "8")}
    given("warning")
    assert env.choice(NAME, choices=("DEBUG", "WARNING")) == "WARNING"
    given("+49")
    assert env.matching(NAME, pattern=r"\+?[1-9][0-9]{0,2}", expected="a calling code") == "+49"
