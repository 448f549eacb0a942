"""The simulator's HTTP front: SendGrid's API slice under /v3, inspection and control under /_sim.

``start_simulator(...)`` runs it in background threads (tests); the management
command ``sendgrid_simulator`` runs it in the foreground (demo, local use).
"""
from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings as django_settings

from simulators.sendgrid.clock import SimClock
from simulators.sendgrid.config import RUN_API_KEY, SimulatorConfig, config_update
from simulators.sendgrid.core import Simulator
from simulators.sendgrid.responses import Response, error_response, json_response
from simulators.sendgrid.signing import generate_key_pair, sign_event_payload
from simulators.sendgrid.validation import MAX_BODY_BYTES

__all__ = ["SimulatorHandle", "generate_key_pair", "sign_event_payload", "start_simulator", "SimulatorServer"]

logger = logging.getLogger("simulators.sendgrid")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer

    def version_string(self) -> str:
        return "nginx"

    def setup(self) -> None:
        super().setup()
        # One handler per connection: its first /v3 request pays the connection setup cost.
        self.first_on_connection = True
        self.server.connection_opened()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            logger.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def _read_body(self) -> tuple[bytes, bool]:
        """The whole body (always read, so the client can finish sending); too_large past 30 MB."""
        chunks: list[bytes] = []
        total = 0
        too_large = False
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data = self.rfile.read(size)
                self.rfile.readline()
                total += len(data)
                if total > MAX_BODY_BYTES:
                    too_large, chunks = True, []
                elif not too_large:
                    chunks.append(data)
            return b"".join(chunks), too_large
        remaining = int(self.headers.get("Content-Length") or 0)
        too_large = remaining > MAX_BODY_BYTES
        while remaining > 0:
            data = self.rfile.read(min(remaining, 1 << 20))
            if not data:
                break
            remaining -= len(data)
            if not too_large:
                chunks.append(data)
        return b"".join(chunks), too_large

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        try:
            body, too_large = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        parsed = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if parsed.path.startswith("/v3/"):
                response = sim.handle_api(method, self.path, headers, body, too_large)
            elif parsed.path.startswith("/_sim/"):
                response = self._control(method, parsed.path, urllib.parse.parse_qs(parsed.query), body)
            else:
                response = error_response(404, "resource not found")
        except Exception:  # answer 500 like a real server rather than hanging the client
            logger.exception("simulator request failed: %s %s", method, self.path)
            response = error_response(500, "Internal Server Error")
        delay = response.delay
        if parsed.path.startswith("/v3/"):
            # The latency knob: slept here, in this connection's thread, outside the simulator's lock.
            delay += sim.config.answer_delay(self.server.latency_rng, first_on_connection=self.first_on_connection)
            self.first_on_connection = False
        if delay:
            time.sleep(delay)
        if response.drop:
            # The ambiguous case: the request was read (and the mail accepted), no answer ever comes.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        sim = self.server.sim
        route = path.rstrip("/")
        q = {k: v[-1] for k, v in query.items()}
        data: Any = {}
        if method == "POST" and body.strip():
            try:
                data = json.loads(body)
            except json.JSONDecodeError:
                return json_response(400, {"error": "invalid JSON"})
        try:
            handler = _CONTROL_ROUTES.get((method, route))
            if handler is not None:
                return handler(self.server, q, data)
            if method == "POST" and route.startswith("/_sim/senders/") and route.endswith("/verify"):
                sender = sim.sender_force_verify(int(route.split("/")[3]))
                return json_response(200, sender) if sender else json_response(404, {"error": "no such sender"})
        except (ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(404, {"error": f"no {method} {route}"})


# --- /_sim/* control routes: (method, path) -> handler(server, query, JSON body) ----------------------


def _messages(server: SimulatorServer, q: dict[str, str], data: Any) -> Response:
    messages = server.sim.messages_view(to=q.get("to"), x_message_id=q.get("x_message_id"),
                                        since=int(q.get("since", 0)))
    return json_response(200, {"messages": messages})


def _events(server: SimulatorServer, q: dict[str, str], data: Any) -> Response:
    events = server.sim.events_view(
        email=q.get("email"), event=q.get("event"), x_message_id=q.get("x_message_id"), since=int(q.get("since", 0)),
    )
    return json_response(200, events)


def _flush(server: SimulatorServer, q: dict[str, str], data: Any) -> Response:
    wait = data.get("wait", True) if isinstance(data, dict) else True
    timeout = float(data.get("timeout", 10.0)) if isinstance(data, dict) else 10.0
    return json_response(200, server.sim.flush(wait=bool(wait), timeout=timeout))


def _reset(server: SimulatorServer, q: dict[str, str], data: Any) -> Response:
    config = None
    if isinstance(data, dict) and data.get("config"):
        config = config_update(server.initial_config, data.get("config_changes") or {})
    server.sim.reset(config=config)
    return json_response(200, {"reset": True})


_CONTROL_ROUTES: dict[tuple[str, str], Callable[[SimulatorServer, dict[str, str], Any], Response]] = {
    ("GET", "/_sim/messages"): _messages,
    ("GET", "/_sim/events"): _events,
    ("GET", "/_sim/inbound"): lambda server, q, data: json_response(200, server.sim.inbound_view()),
    ("GET", "/_sim/deliveries"): lambda server, q, data: json_response(
        200, {"deliveries": server.sim.deliveries_view()}),
    ("GET", "/_sim/status"): lambda server, q, data: json_response(
        200, {**server.sim.status_view(), "connections_opened": server.connections_opened}),
    ("GET", "/_sim/public_key"): lambda server, q, data: json_response(
        200, {"public_key": server.sim.public_key_b64}),
    ("GET", "/_sim/config"): lambda server, q, data: json_response(200, server.sim.config.as_dict()),
    ("GET", "/_sim/faults"): lambda server, q, data: json_response(200, server.sim.fault_view()),
    ("POST", "/_sim/faults"): lambda server, q, data: json_response(200, server.sim.set_fault(data)),
    ("POST", "/_sim/config"): lambda server, q, data: json_response(200, server.sim.configure(data)),
    ("POST", "/_sim/flush"): _flush,
    ("POST", "/_sim/reset"): _reset,
}


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator, *, verbose: bool = False) -> None:
        self.sim = sim
        self.verbose = verbose
        self.initial_config = sim.config
        self.connections_opened = 0  # accepted connections, since start (clients' keep-alive shows here)
        self.latency_rng = random.Random(sim.config.seed)
        self._count_lock = threading.Lock()
        super().__init__(address, _Handler)

    def connection_opened(self) -> None:
        with self._count_lock:
            self.connections_opened += 1


class SimulatorHandle:
    """A running simulator: its URL and key, and the inspection endpoints as methods (in-process)."""

    def __init__(self, server: SimulatorServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.sim = server.sim
        host, port = server.server_address[:2]
        self.host, self.port = str(host), int(port)
        self.base_url = f"http://{self.host}:{self.port}"

    @property
    def api_keys(self) -> list[str]:
        """The Bearer keys this simulator accepts (every other key gets SendGrid's 401)."""
        return list(self.sim.config.api_keys)

    @property
    def public_key_b64(self) -> str:
        return self.sim.public_key_b64

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self.sim.private_key

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.sim.stop()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Mirrors of /_sim/*: the same data the endpoints return.
    def messages(self, *, to: str | None = None, x_message_id: str | None = None) -> list[dict[str, Any]]:
        return self.sim.messages_view(to=to, x_message_id=x_message_id)

    def events(self, *, email: str | None = None, event: str | None = None, x_message_id: str | None = None):
        return self.sim.events_view(email=email, event=event, x_message_id=x_message_id)["events"]

    def inbound(self) -> list[dict[str, Any]]:
        return self.sim.inbound_view()["inbound"]

    def deliveries(self) -> list[dict[str, Any]]:
        return self.sim.deliveries_view()

    def status(self) -> dict[str, Any]:
        return {**self.sim.status_view(), "connections_opened": self.connections_opened}

    @property
    def connections_opened(self) -> int:
        """Connections the simulator accepted since it started."""
        return self._server.connections_opened

    def set_faults(self, mode: str, count: int | None = 1, delay_seconds: float | None = None, **extra: Any):
        data: dict[str, Any] = {"mode": mode, "count": count, **extra}
        if delay_seconds is not None:
            data["delay_seconds"] = delay_seconds
        return self.sim.set_fault(data)

    def flush(self, *, wait: bool = True, timeout: float = 10.0) -> dict[str, Any]:
        return self.sim.flush(wait=wait, timeout=timeout)

    def reset(self) -> None:
        self.sim.reset()

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.sim.configure(changes)

    def verify_sender(self, sender_id: int) -> dict[str, Any] | None:
        return self.sim.sender_force_verify(sender_id)


def serve(
    sim: Simulator, *, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
) -> tuple[SimulatorServer, threading.Thread]:
    server = SimulatorServer((host, port), sim, verbose=verbose)
    sim.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sim-http", daemon=True)
    thread.start()
    return server, thread


def _configured_api_key() -> str:
    """The key the project under test sends (its settings, random per test run), else this process's own."""
    if django_settings.configured:
        return django_settings.SENDGRID_API_KEY
    return RUN_API_KEY


def start_simulator(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    inbound_url: str | None = None,
    seed: int = 0,
    api_keys: Iterable[str] | None = None,
    any_sender: bool = True,
    time_scale: float = 0.0,
    flush_interval_seconds: float = 0.05,
    private_key: ec.EllipticCurvePrivateKey | None = None,
    clock: SimClock | None = None,
    clock_speed: float = 1.0,
    clock_source: Callable[[], float] | None = None,
    verbose: bool = False,
    **settings: Any,
) -> SimulatorHandle:
    """Start a simulator for tests: delays compressed to nothing, fast batches, short bounded retries.

    Extra keyword arguments are SimulatorConfig fields (``rates={...}``, ``overrides={...}``,
    ``duplicate_rate=1.0``, ``auto_emit=False``, ``rate_limit_per_second=5``...).
    """
    defaults: dict[str, Any] = {
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_max_seconds": 0.5,
        "webhook_max_attempts": 4,
        "webhook_timeout_seconds": 5.0,
        "suppress_after_failure": False,
        "tick_seconds": 0.01,
    }
    changes = {
        **defaults,
        **settings,
        "seed": seed,
        "api_keys": list(api_keys) if api_keys is not None else [_configured_api_key()],
        "any_sender": any_sender,
        "time_scale": time_scale,
        "flush_interval_seconds": flush_interval_seconds,
        "webhook_url": webhook_url,
        "inbound_url": inbound_url,
    }
    config = config_update(SimulatorConfig(), changes)
    sim = Simulator(
        config=config, clock=clock or SimClock(speed=clock_speed, source=clock_source), private_key=private_key
    )
    server, thread = serve(sim, host=host, port=port, verbose=verbose)
    return SimulatorHandle(server, thread)
