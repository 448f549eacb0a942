"""The simulator, independent of HTTP: one object composed of its parts, sharing one state and one lock.

- ``api.MailApi`` (with ``senders.SenderApi``): SendGrid's /v3 slice: mail/send, verified senders,
  email validation, authentication, rate limits and the API faults;
- ``timeline.Timeline``: each accepted recipient's events, replies and one-click POSTs on the virtual clock;
- ``poster.Poster``: batches of events, signed and posted, replies posted, retried with backoff;
- ``inspection.Inspection``: the /_sim/* views, the config and the fault switches.

``Simulator`` wires them, runs the scheduler and poster threads, and keeps the methods the HTTP front
(server.py) and the management command call. Network I/O always happens outside the lock.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from simulators.sendgrid.api import MailApi
from simulators.sendgrid.clock import SimClock
from simulators.sendgrid.config import SimulatorConfig
from simulators.sendgrid.inspection import FAULT_MODES, Inspection
from simulators.sendgrid.poster import SIGNATURE_HEADER, TIMESTAMP_HEADER, Poster
from simulators.sendgrid.ratelimit import DEFAULT_RATE_LIMIT
from simulators.sendgrid.responses import Response, error_response, json_response
from simulators.sendgrid.senders import SenderApi
from simulators.sendgrid.signing import generate_key_pair
from simulators.sendgrid.state import Delivery, SimState
from simulators.sendgrid.timeline import Timeline

__all__ = [
    "DEFAULT_RATE_LIMIT", "FAULT_MODES", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Response", "Simulator",
    "error_response", "json_response",
]

logger = logging.getLogger("simulators.sendgrid")


class Simulator:
    def __init__(
        self,
        *,
        config: SimulatorConfig,
        clock: SimClock | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        if private_key is None:
            private_key, _ = generate_key_pair()
        self.state = SimState(config=config, clock=clock or SimClock(), private_key=private_key)
        self.poster = Poster(self.state)
        self.timeline = Timeline(self.state, self.poster)
        self.senders = SenderApi(self.state)
        self.api = MailApi(self.state, self.timeline, self.senders)
        self.inspection = Inspection(self.state)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # The /_sim/* views and switches, as the HTTP front calls them.
        self.configure = self.inspection.configure
        self.set_fault = self.inspection.set_fault
        self.messages_view = self.inspection.messages_view
        self.events_view = self.inspection.events_view
        self.inbound_view = self.inspection.inbound_view
        self.deliveries_view = self.inspection.deliveries_view
        self.status_view = self.inspection.status_view
        self.fault_view = self.inspection.fault_view
        self.sender_force_verify = self.senders.force_verify

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self.state.private_key

    @property
    def public_key_b64(self) -> str:
        return self.state.public_key_b64

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads.append(threading.Thread(target=self._scheduler_loop, name="sim-scheduler", daemon=True))
        for i in range(max(1, self.config.poster_threads)):
            self._threads.append(
                threading.Thread(target=self.poster.run, args=(self._stop,), name=f"sim-poster-{i}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.state.post_cv:
            self.state.post_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def reset(self, *, config: SimulatorConfig | None = None) -> None:
        with self.state.post_cv:
            self.state.reset()
            if config is not None:
                self.state.config = config
            self.state.post_cv.notify_all()

    def _scheduler_loop(self) -> None:
        while not self._stop.wait(self.config.tick_seconds):
            try:
                with self.state.post_cv:
                    self.timeline.tick()
            except Exception:  # the loop must survive a bad item; the item is logged and skipped
                logger.exception("simulator scheduler tick failed")

    # --- the API and flushing -------------------------------------------------------------------

    def handle_api(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> Response:
        return self.api.handle(method, path, headers, body, too_large)

    def _drain(self) -> tuple[list[Delivery], int]:
        """Emit every pending item and batch it (lock held): (deliveries created, items emitted)."""
        created: list[Delivery] = []
        emitted = 0
        for _ in range(100):  # duplicates of emitted events land in the heap; drain them in later batches
            created += self.poster.cut_batches(force=True)
            emitted += self.timeline.emit_due(force=True)
            created += self.poster.cut_batches(force=True)
            if not self.state.heap:
                break
        return created, emitted

    def flush(self, *, wait: bool = True, timeout: float = 10.0) -> dict[str, Any]:
        """Emit every pending item now (duplicates in later batches), expedite retries, wait for one attempt each."""
        with self.state.post_cv:
            created, emitted = self._drain()
            waiting = self.poster.expedite(created)
            if wait:
                self.poster.wait_for_one_attempt(waiting, timeout)
            return {
                "emitted": emitted,
                "posts": len(waiting),
                "delivered": sum(1 for d in waiting.values() if d.status == "delivered"),
                "not_delivered": sum(1 for d in waiting.values() if d.status != "delivered"),
                "pending": len(self.state.heap),
            }
