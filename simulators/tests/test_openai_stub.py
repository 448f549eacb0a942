"""The OpenAI-compatible stub's own behaviour, and the offline answers it gives in the demo."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from simulators.openai_stub.server import chat_json, start_stub
from simulators.openai_stub.testing import clean_ai_redis_fixture  # noqa: F401 - pytest fixture


def _post(url: str, body: dict, key: str | None = "sk-x") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_stub_serves_the_script_in_order_then_fails_loudly():
    stub = start_stub(port=0)
    try:
        stub.enqueue(chat_json({"n": 1}, prompt_tokens=11, completion_tokens=2))
        status, body = _post(f"{stub.base_url}/chat/completions", {"model": "m", "messages": []})
        assert status == 200 and json.loads(body["choices"][0]["message"]["content"]) == {"n": 1}
        assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
        status, body = _post(f"{stub.base_url}/chat/completions", {"model": "m", "messages": []})
        assert status == 500 and "no scripted response" in body["error"]["message"]
        assert _post(f"{stub.base_url}/chat/completions", {}, key=None)[0] == 401
        assert _post(f"{stub.base_url}/embeddings", {})[0] == 404
        assert [r.json for r in stub.requests] == [{"model": "m", "messages": []}] * 2
        with urllib.request.urlopen(f"{stub.root_url}/_stub/requests", timeout=5) as response:
            assert len(json.loads(response.read())["requests"]) == 2
    finally:
        stub.stop()


@pytest.mark.django_db
def test_demo_responder_runs_the_whole_ai_path_offline(settings, clean_ai_redis, tenant):
    """The stub answering like a model (the demo's setup): plan, lead analysis and reply, all over HTTP."""
    from campaigns.fallback_planner import BriefInput, ContactInput, PlanInputs
    from campaigns.generation import plan_draft
    from messaging.inbound import classify_reply
    from simulators.openai_stub.responders import demo_responder

    stub = start_stub(port=0, responder=demo_responder)
    try:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = stub.base_url, "sk-demo"
        inputs = PlanInputs(brief=BriefInput(goal="Book a demo", offer="Fast onboarding"),
                            contact=ContactInput(first_name="Ana", timezone="Europe/Madrid"))
        draft = plan_draft(inputs=inputs, tenant=tenant)
        assert draft.source == "ai" and draft.plan["nodes"][0]["message"]["text"].startswith("Hi Ana,")
        reply = classify_reply(tenant=tenant, subject="Re", text="Please unsubscribe me", headers={})
        assert (reply.source, reply.stop_request) == ("ai", True)
        assert len(stub.requests) == 2
    finally:
        stub.stop()
