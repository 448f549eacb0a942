"""The simulator's shared state: what it was sent, what it scheduled and what it posts, under one lock.

The parts (api, senders, timeline, poster, inspection) each hold this object and work on it with the lock
held; network I/O always happens outside it. ``reset`` starts a new generation: deliveries of an older
generation are never posted again.
"""
from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from simulators.sendgrid.clock import SimClock
from simulators.sendgrid.config import SimulatorConfig
from simulators.sendgrid.model import Planned, Recipient
from simulators.sendgrid.signing import public_key_b64

NO_FAULT: dict[str, Any] = {"mode": "none", "remaining": None, "delay_seconds": 0.0, "status": None}


@dataclasses.dataclass(eq=False)
class Delivery:
    """One outgoing POST (a batch of events, a reply, a one-click unsubscribe) and its attempts."""

    id: int
    kind: str  # "events" | "inbound" | "oneclick"
    url: str | None
    body: bytes
    content_type: str
    event_count: int
    generation: int
    created_at: float
    status: str = "pending"  # pending, sending, retrying, delivered, failed, no_url
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None
    next_at: float = 0.0
    log: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "event_count": self.event_count,
            "bytes": len(self.body),
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "attempt_log": list(self.log),
        }


@dataclasses.dataclass(order=True)
class Scheduled:
    """One item of a recipient's timeline (an event, a reply, a one-click POST), due on the virtual clock."""

    due: float
    seq: int
    kind: str = dataclasses.field(compare=False)
    rcpt: Recipient = dataclasses.field(compare=False)
    planned: Planned | None = dataclasses.field(compare=False)
    timestamp: float = dataclasses.field(compare=False)
    copy_of: dict[str, Any] | None = dataclasses.field(compare=False, default=None)
    copy_kind: str = dataclasses.field(compare=False, default="original")
    original_entry: dict[str, Any] | None = dataclasses.field(compare=False, default=None)


class SimState:
    def __init__(self, *, config: SimulatorConfig, clock: SimClock, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.config = config
        self.clock = clock
        self.private_key = private_key
        self.public_key_b64 = public_key_b64(private_key)
        self.lock = threading.RLock()
        self.post_cv = threading.Condition(self.lock)  # posters wait on it; flush waits for their attempts
        self.generation = 0
        self.ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """Forget everything sent and scheduled (lock held, or before any thread runs)."""
        self.generation += 1
        # what the API was sent
        self.messages: list[dict[str, Any]] = []
        self.senders: dict[int, dict[str, Any]] = {}
        self.sender_ids = itertools.count(1)
        self.sent_counts: Counter[str] = Counter()
        self.suppressions: dict[str, str] = {}
        self.windows: dict[tuple[int, float], Any] = {}  # rate windows, by (limit, length)
        # the recipients' timelines
        self.heap: list[Scheduled] = []
        self.event_log: list[dict[str, Any]] = []
        self.inbound_log: list[dict[str, Any]] = []
        # events emitted but not batched yet, and the POSTs
        self.ready: list[tuple[bytes, dict[str, Any]]] = []
        self.ready_bytes = 0
        self.last_cut = time.monotonic()
        self.deliveries: dict[int, Delivery] = {}
        self.post_heap: list[tuple[float, int, Delivery]] = []
        # fault switches
        self.fault: dict[str, Any] = dict(NO_FAULT)
        self.fault_hits: list[dict[str, Any]] = []
        self.stats: Counter[str] = Counter()
