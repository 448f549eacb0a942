"""docker-compose.yml, read (Docker is not needed to run the suite): every process, locked doors, health, and a
profile that runs the whole stack on the simulators."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SIM_ENV = dict(line.split("=", 1) for line in (ROOT / "compose.simulators.env").read_text().splitlines()
               if line and not line.startswith("#"))
APP_SERVICES = ("migrate", "web", "worker", "dispatcher", "beat", "flower")
SIMULATORS = ("sendgrid-simulator", "openai-stub")
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def _interpolate(text: str, values: dict[str, str]) -> str:
    """What docker compose makes of ${NAME:-default} (and $$) with these variables set."""
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":  # an escaped dollar, left for the container's shell
            return "$"
        return values.get(match.group(1)) or (match.group(2) or "")

    return VARIABLE.sub(one, text)


def _command(service: str, values: dict[str, str]) -> list[str]:
    return [_interpolate(part, values) for part in SERVICES[service]["command"]]


def _environment(service: str, values: dict[str, str]) -> dict[str, str]:
    return {name: _interpolate(str(value), values) for name, value in SERVICES[service]["environment"].items()}


def test_every_process_of_make_run_and_the_demo_has_a_service():
    assert set(APP_SERVICES) <= set(SERVICES)
    assert _command("dispatcher", {})[:3] == ["python", "manage.py", "run_dispatcher"]
    assert all("profiles" not in SERVICES[name] for name in APP_SERVICES)


@pytest.mark.parametrize("service", ["web", "worker", "beat", "flower"])
def test_long_running_services_have_a_healthcheck(service):
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"] and check["retries"]


def test_flower_requires_a_login_from_the_environment_and_its_healthcheck_needs_none():
    flower = SERVICES["flower"]
    assert _environment("flower", {"FLOWER_BASIC_AUTH": "ops:s3cret"})["FLOWER_BASIC_AUTH"] == "ops:s3cret"
    script = _command("flower", {})[-1]
    assert script.startswith('test -n "${FLOWER_BASIC_AUTH:-}" || {') and "exit 1" in script
    assert script.endswith("exec celery -A outreach flower --port=5555")
    assert flower["healthcheck"]["test"][-1] == "http://127.0.0.1:5555/healthcheck"  # outside Flower's login
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_the_flower_guard_refuses_to_start_without_a_login_and_starts_with_one():
    script = _command("flower", {}).pop().replace("exec celery -A outreach flower --port=5555", "echo started")
    refused = subprocess.run(["sh", "-c", script], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    started = subprocess.run(["sh", "-c", script], env={"PATH": os.environ["PATH"], "FLOWER_BASIC_AUTH": "a:b"},
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "FLOWER_BASIC_AUTH must be set" in refused.stderr
    assert started.returncode == 0 and started.stdout.strip() == "started"


def test_the_web_server_runs_gunicorn_as_configured_in_gunicorn_conf():
    assert _command("web", {})[:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert '"gunicorn", "--config", "gunicorn.conf.py"' in (ROOT / "Dockerfile").read_text()


def test_production_is_the_default_and_secrets_have_no_value_in_the_file():
    env = _environment("web", {})
    assert env["DJANGO_SETTINGS_MODULE"] == "outreach.settings.production"
    assert env["OUTREACH_LOCAL_MODE"] == "false"
    for secret in ("SECRET_KEY", "SENDGRID_INBOUND_SECRET", "SENDGRID_API_KEY", "PUBLIC_BASE_URL"):
        assert env[secret] == "", f"{secret} must come from .env (production refuses it missing)"


def test_the_simulators_profile_points_every_process_at_the_stand_ins():
    assert all(SERVICES[name]["profiles"] == ["simulators"] for name in SIMULATORS)
    assert SIM_ENV["COMPOSE_PROFILES"] == "simulators" and SIM_ENV["OUTREACH_LOCAL_MODE"] == "true"
    env = _environment("worker", SIM_ENV)
    sendgrid, openai = urlsplit(env["SENDGRID_API_HOST"]), urlsplit(env["OPENAI_BASE_URL"])
    simulator, stub = _command("sendgrid-simulator", SIM_ENV), _command("openai-stub", SIM_ENV)
    assert (sendgrid.hostname, str(sendgrid.port)) == ("sendgrid-simulator", simulator[simulator.index("--port") + 1])
    assert (openai.hostname, str(openai.port)) == ("openai-stub", stub[stub.index("--port") + 1])
    assert simulator[simulator.index("--api-key") + 1] == env["SENDGRID_API_KEY"] != ""
    assert simulator[simulator.index("--private-key-file") + 1] == env["SIM_WEBHOOK_KEY_FILE"]
    public = urlsplit(env["PUBLIC_BASE_URL"])
    assert public.hostname == "web" and public.hostname in env["ALLOWED_HOSTS"].split(",")
    assert "appvar:/app/var" in SERVICES["worker"]["volumes"]  # one set of generated secrets for all


@pytest.mark.parametrize("service", ["dispatcher", "sendgrid-simulator", "openai-stub"])
def test_management_commands_of_the_services_exist_and_accept_their_arguments(service):
    argv = _command(service, SIM_ENV)
    name = argv[2]
    command = load_command_class(get_commands()[name], name)
    command.create_parser("manage.py", name).parse_args(argv[3:])  # exits (fails the test) on a bad flag


@pytest.mark.slow
def test_the_simulators_profile_settings_load():
    env = {**os.environ, **{k: v for k, v in _environment("web", SIM_ENV).items() if v}}
    for name in ("SECRET_KEY", "SENDGRID_INBOUND_SECRET", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    show = "import django; django.setup(); from django.conf import settings as s; print(s.SENDGRID_API_HOST)"
    result = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://sendgrid-simulator:8025"
