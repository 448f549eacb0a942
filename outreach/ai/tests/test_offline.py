"""The registry of offline answers the apps fill (outreach/ai/offline.py)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from outreach.ai.offline import NoOfflineAnswer, OfflineResponders, offline_responders, prompt_name_of


def _request(name: str, user: str) -> dict:
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name}},
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": user}]}


def test_every_app_registered_its_offline_answer_when_it_started():
    assert offline_responders.names() == ["lead_analysis", "plan", "reply_classification"]


def test_a_responder_gets_the_prompts_data_block_and_unknown_prompts_have_no_answer():
    registry = OfflineResponders()
    registry.register("echo", lambda block: {"got": block}, block="DATA")
    request = _request("echo", "before\n<<<DATA\nhello\nDATA>>>\nafter")
    assert prompt_name_of(request) == "echo"
    assert registry.answer("echo", request) == {"got": "hello"}
    with pytest.raises(NoOfflineAnswer):
        registry.answer("echo", _request("echo", "no block here"))
    with pytest.raises(NoOfflineAnswer):
        registry.answer("other", request)
    with pytest.raises(ImproperlyConfigured):
        registry.register("echo", lambda block: {}, block="DATA")
