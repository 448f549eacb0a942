"""An OpenAI-compatible stand-in for tests and the demo: a real HTTP server (stdlib only).

It answers `POST /v1/chat/completions` with scripted responses, in order, and records every request so
a test can assert what the client sent (the repair round's prompt, the response_format, the model):

    stub = start_stub()                      # port 0: the OS picks a free port
    stub.enqueue(chat_json(plan), rate_limited(retry_after="0"), server_error())
    with override_settings(OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY="sk-test"): ...
    stub.requests[0].json["messages"]
    stub.stop()

When the script is empty it asks `responder(request_json) -> StubResponse` (the demo passes one that
answers every call sensibly), or, without a responder, answers 500 "no scripted response" so a test
that sends more calls than it scripted fails loudly.

Run standalone: `python -m simulators.openai_stub.server --port 18700` (scripted-empty, generic answers).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass
class StubResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages", []))

    @property
    def text(self) -> str:
        """All message contents joined: what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


_ids = itertools.count(1)


def chat_text(content: str, *, model: str = "gpt-4o-mini", prompt_tokens: int = 100, completion_tokens: int = 50,
              finish_reason: str = "stop", refusal: str | None = None) -> StubResponse:
    """A 200 chat completion whose message content is `content`, with usage counts."""
    return StubResponse(200, {
        "id": f"chatcmpl-stub-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": None if refusal else content, "refusal": refusal},
            "finish_reason": finish_reason,
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def chat_json(data: Any, **kwargs: Any) -> StubResponse:
    """A 200 chat completion whose content is `data` as JSON (a structured output)."""
    return chat_text(json.dumps(data), **kwargs)


def error(status: int, message: str, *, error_type: str = "server_error", headers: dict[str, str] | None = None,
          code: str | None = None) -> StubResponse:
    return StubResponse(status, {"error": {"message": message, "type": error_type, "param": None, "code": code}},
                        headers or {})


def rate_limited(*, retry_after: str | None = "1", retry_after_ms: str | None = None) -> StubResponse:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return error(429, "Rate limit reached for requests", error_type="requests", headers=headers,
                 code="rate_limit_exceeded")


def server_error(status: int = 500) -> StubResponse:
    return error(status, "The server had an error while processing your request.")


Responder = Callable[[Any], StubResponse]


class StubHandle:
    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread, responder: Responder | None) -> None:
        self._server = server
        self._thread = thread
        self._lock = threading.Lock()
        self._script: deque[StubResponse] = deque()
        self._requests: list[RecordedRequest] = []
        self.responder = responder
        host, port = server.server_address[:2]
        self.port = int(port)
        self.root_url = f"http://{host}:{port}"
        self.base_url = f"{self.root_url}/v1"  # what OPENAI_BASE_URL should be

    def enqueue(self, *responses: StubResponse) -> None:
        with self._lock:
            self._script.extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # called by the handler thread
    def _next(self, request: RecordedRequest) -> StubResponse:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(request.json)
        return error(500, "stub: no scripted response left for this request")


def _make_handler(handle_ref: list[StubHandle]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return  # quiet: tests print their own diagnostics

        def _send(self, response: StubResponse) -> None:
            payload = json.dumps(response.body).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(error(400, "stub: body is not JSON", error_type="invalid_request_error"))
                return
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(error(404, f"stub: no route {self.path}", error_type="invalid_request_error"))
                return
            if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                self._send(error(401, "stub: missing bearer key", error_type="invalid_request_error"))
                return
            request = RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            response = handle_ref[0]._next(request)
            if response.delay_seconds:
                time.sleep(response.delay_seconds)
            self._send(response)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/_stub/requests":
                self._send(StubResponse(200, {"requests": [dataclasses.asdict(r) for r in handle_ref[0].requests]}))
                return
            self._send(error(404, f"stub: no route {self.path}", error_type="invalid_request_error"))

    return Handler


def start_stub(*, port: int = 0, host: str = "127.0.0.1", responder: Responder | None = None) -> StubHandle:
    """Start the stub on a background thread; `.base_url` is what OPENAI_BASE_URL should be set to."""
    handle_ref: list[StubHandle] = []
    server = ThreadingHTTPServer((host, port), _make_handler(handle_ref))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="openai-stub", daemon=True)
    handle = StubHandle(server, thread, responder)
    handle_ref.append(handle)
    thread.start()
    return handle


def generic_responder(request_json: Any) -> StubResponse:
    """Answers without a script: a plausible answer per response_format name (for manual runs)."""
    fmt = ((request_json or {}).get("response_format") or {}).get("json_schema") or {}
    name = fmt.get("name", "")
    if name == "reply_classification":
        return chat_json({"label": "neutral", "confidence": 0.5, "stop_request": False, "return_date": None})
    if name == "lead_analysis":
        return chat_json({"summary": "A company (stub analysis).", "pains": ["manual work"],
                          "angles": ["save time"], "fit_score": 50, "fit_reasons": ["stub"]})
    return error(500, f"stub: no generic answer for response_format {name!r}")


if __name__ == "__main__":  # pragma: no cover - manual tool
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    stub = start_stub(port=args.port, responder=generic_responder)
    print(f"stub listening on {stub.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()
