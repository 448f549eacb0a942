"""Pytest fixtures shared by every test that talks to the AI (outreach, contacts and campaigns tests).

`stub`: a started OpenAI-compatible stub with settings pointing at it (key set, fast retries, generous
caps), stopped afterwards. `clean_ai_redis`: deletes this project's AI cap keys from the test Redis DB.
Import them into a conftest.py: `from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture`
(they register as `stub` and `clean_ai_redis`).
"""
from __future__ import annotations

import pytest

from outreach.ai.client import KEY_PREFIX, redis_client
from simulators.openai_stub.server import start_stub


def _clean() -> None:
    r = redis_client()
    keys = list(r.scan_iter(f"{KEY_PREFIX}:*"))
    if keys:
        r.delete(*keys)


@pytest.fixture(name="clean_ai_redis")
def clean_ai_redis_fixture():
    _clean()
    yield
    _clean()


@pytest.fixture(name="stub")
def ai_stub_fixture(settings, clean_ai_redis):  # settings: pytest-django's override fixture
    handle = start_stub(port=0)
    settings.OPENAI_BASE_URL = handle.base_url
    settings.OPENAI_API_KEY = "sk-stub-test"
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.OPENAI_TIMEOUT_SECONDS = 5.0
    settings.AI_BACKOFF_BASE_SECONDS = 0.01
    settings.AI_BACKOFF_MAX_SECONDS = 0.05
    settings.AI_TENANT_CONCURRENCY = 8
    settings.AI_TENANT_RATE_PER_MINUTE = 6000
    settings.AI_TENANT_BURST = 100
    settings.AI_ACQUIRE_WAIT_SECONDS = 0.0
    try:
        yield handle
    finally:
        handle.stop()

