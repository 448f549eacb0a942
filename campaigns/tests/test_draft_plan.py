"""draft_plan: the operator tool for previewing the plan a contact would get."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from campaigns.dsl import validate_plan
from campaigns.tests.draft_plan_data import AI_PLAN
from simulators.openai_stub.server import chat_json
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures

BRIEF = {"goal": "Book a 20-minute demo", "offer": "Onboarding automation that halves time-to-first-shipment",
         "sender_name": "Sam Lee", "allowed_link_domains": ["shipfast.example"]}
CONTACT = {"first_name": "Dana", "last_name": "Smith", "title": "Head of Operations", "timezone": "Europe/Berlin"}
LEAD = {"name": "Acme Logistics", "domain": "acme.example", "website_text": "Freight forwarding, manual onboarding."}


def _write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def _draft(tmp_path, brief=BRIEF, contact=CONTACT, lead=LEAD):
    out, err = io.StringIO(), io.StringIO()
    args = ["--brief", _write(tmp_path, "brief.json", brief), "--contact", _write(tmp_path, "contact.json", contact)]
    if lead is not None:
        args += ["--lead", _write(tmp_path, "lead.json", lead)]
    call_command("draft_plan", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


@pytest.fixture
def no_key(settings):
    settings.OPENAI_API_KEY = ""


def test_draft_plan_offline_prints_a_valid_personalised_fallback_plan(no_key, tmp_path):
    plan, err = _draft(tmp_path)
    assert validate_plan(plan) == []
    assert plan["timezone"] == "Europe/Berlin"
    assert plan["nodes"][0]["message"]["text"].startswith("Hi Dana,")
    assert "Acme Logistics" in plan["nodes"][0]["message"]["text"]
    assert err.startswith("source: fallback")
    assert _draft(tmp_path)[0] == plan  # deterministic


def test_draft_plan_without_a_lead_file(no_key, tmp_path):
    plan, _ = _draft(tmp_path, lead=None)
    assert validate_plan(plan) == []


@pytest.mark.django_db
def test_draft_plan_uses_the_ai_when_a_key_is_set(stub, tmp_path):
    stub.enqueue(chat_json(AI_PLAN))
    plan, err = _draft(tmp_path)
    assert err.strip() == "source: ai"
    assert plan["nodes"][0]["id"] == "intro"
    assert "Dana" in stub.requests[0].text


@pytest.mark.parametrize(("files", "message"), [
    ({"brief": None}, "brief {dir}/brief.json: no such file"),
    ({"brief": '{"goal": "x",'}, "brief {dir}/brief.json: bad JSON at line 1"),
    ({"brief": "[1, 2]"}, "expected a JSON object, got list"),
    ({"brief": {"offer": "x"}}, "brief: missing required field 'goal'"),
    ({"brief": {**BRIEF, "allowed_link_domains": "shipfast.example"}},
     "brief: field 'allowed_link_domains' must be a list"),
    ({"brief": {**BRIEF, "gaol": "typo"}}, "brief: unknown field 'gaol'"),
    ({"contact": {"last_name": "Smith"}}, "contact: missing required field 'first_name'"),
    ({"contact": {**CONTACT, "timezone": "Mars/Olympus"}}, "contact: field 'timezone' is not an IANA time zone"),
    ({"lead": {"domain": "acme.example"}}, "lead: missing required field 'name'"),
    ({"lead": {**LEAD, "fit_score": 250}}, "lead: field 'fit_score' must be between 0 and 100"),
])
def test_draft_plan_names_the_problem_in_malformed_input(no_key, tmp_path, files, message):
    paths = {}
    for name, default in (("brief", BRIEF), ("contact", CONTACT), ("lead", LEAD)):
        content = files.get(name, default)
        paths[name] = str(tmp_path / f"{name}.json") if content is None else _write(tmp_path, f"{name}.json", content)
    with pytest.raises(CommandError) as exc_info:
        call_command("draft_plan", "--brief", paths["brief"], "--contact", paths["contact"], "--lead", paths["lead"],
                     stdout=io.StringIO(), stderr=io.StringIO())
    text = str(exc_info.value)
    assert message.format(dir=tmp_path) in text and "\n" not in text


def test_draft_plan_exits_non_zero_with_one_line_on_stderr(tmp_path):
    bad = _write(tmp_path, "brief.json", '{"offer": "x"}')
    contact = _write(tmp_path, "contact.json", CONTACT)
    env = {**os.environ, "OPENAI_API_KEY": "", "DJANGO_SETTINGS_MODULE": "outreach.settings.test",
           "REDIS_URL": django_settings.REDIS_URL}
    proc = subprocess.run([sys.executable, "manage.py", "draft_plan", "--brief", bad, "--contact", contact],
                          cwd=Path(django_settings.BASE_DIR), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["CommandError: brief: missing required field 'goal'"]
