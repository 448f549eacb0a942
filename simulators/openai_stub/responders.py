"""A responder that makes the stub answer like a (very predictable) model, for the demo.

With `python manage.py ai_stub --port 18700` and OPENAI_BASE_URL=http://127.0.0.1:18700/v1 plus any
OPENAI_API_KEY, the whole AI path runs offline: the real openai client, retries, per-tenant caps and
AICall accounting. The answers come from the apps' deterministic components through the registry of
offline responders (outreach/ai/offline.py), which read the data back out of the prompts (the INPUT /
LEAD / REPLY blocks our prompt files put it in). The apps register them in their AppConfig.ready():

- `plan` (campaigns): the fallback planner's plan for the inputs in the prompt;
- `lead_analysis` (contacts): the deterministic analysis of the lead in the prompt;
- `reply_classification` (messaging): the rule-based classifier on the reply in the prompt.
"""
from __future__ import annotations

import json
from typing import Any

from outreach.ai.offline import NoOfflineAnswer, offline_responders, prompt_name_of
from simulators.openai_stub.server import StubResponse, chat_json, error


def _usage(name: str, request_json: Any, block: str) -> tuple[int, int]:
    """Token counts shaped like a model's (prompt, completion), so AICall accounting sees plausible numbers."""
    if name == "plan":
        return len(json.dumps(request_json)) // 4, 900
    if name == "lead_analysis":
        return len(block) // 4 + 300, 200
    return len(block) // 4 + 250, 30


def demo_responder(request_json: Any) -> StubResponse:
    name = prompt_name_of(request_json)
    try:
        block = offline_responders.data_block(name, request_json)
        answer = offline_responders.answer(name, request_json)
    except NoOfflineAnswer:
        return error(400, f"stub: cannot answer response_format {name!r}", error_type="invalid_request_error")
    prompt_tokens, completion_tokens = _usage(name, request_json, block)
    return chat_json(answer, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
