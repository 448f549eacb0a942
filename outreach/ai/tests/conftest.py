"""Fixtures for AI tests: `stub` (the OpenAI-compatible stub over real HTTP) and `clean_ai_redis`."""
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures
