"""Inspection and control behind /_sim/*: what the simulator was sent and did, its config and fault switches."""
from __future__ import annotations

from collections import Counter
from typing import Any

from simulators.sendgrid.config import config_update
from simulators.sendgrid.state import SimState

FAULT_MODES = ("5xx", "429", "slow", "drop", "none")


def _checked_fault(data: dict[str, Any]) -> dict[str, Any]:
    """A fault switch from a /_sim/faults body; ValueError naming the field that is wrong."""
    mode = data.get("mode")
    if mode not in FAULT_MODES:
        raise ValueError(f"mode: one of {list(FAULT_MODES)}")
    count = data.get("count", 1)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count: a positive integer, or null for every request until mode 'none'")
    delay = data.get("delay_seconds", 1.0 if mode in ("429", "slow") else 0.0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise ValueError("delay_seconds: a non-negative number")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 500 <= status <= 599):
        raise ValueError("status: a 5xx code")
    path = data.get("path", "/v3/")
    if not isinstance(path, str):
        raise ValueError("path: a path prefix")
    return {
        "mode": mode,
        "remaining": None if mode == "none" else count,
        "delay_seconds": float(delay),
        "status": status,
        "path": path,
    }


def _matches(entry: dict[str, Any], *, email: str | None, event: str | None, x_message_id: str | None) -> bool:
    ev = entry["event"]
    return (
        (not email or ev["email"].lower() == email.lower())
        and (not event or ev["event"] == event)
        and (not x_message_id or entry["x_message_id"] == x_message_id)
    )


class Inspection:
    def __init__(self, state: SimState) -> None:
        self.state = state

    # --- control --------------------------------------------------------------------------------

    def configure(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.state.config = config_update(self.state.config, data)
            return self.state.config.as_dict()

    def set_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        fault = _checked_fault(data)
        with self.state.lock:
            self.state.fault = fault
            return dict(fault)

    # --- views ----------------------------------------------------------------------------------

    def messages_view(
        self, *, to: str | None = None, x_message_id: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        with self.state.lock:
            out = self.state.messages[since:]
        if to:
            out = [m for m in out if any(r["email"].lower() == to.lower() for r in m["recipients"])]
        if x_message_id:
            out = [m for m in out if m["x_message_id"] == x_message_id]
        return out

    def events_view(
        self, *, email: str | None = None, event: str | None = None, x_message_id: str | None = None, since: int = 0
    ) -> dict[str, Any]:
        state = self.state
        with state.lock:
            rows = [
                {**entry, **self._delivery_state(entry["delivery_id"])}
                for entry in state.event_log[since:]
                if _matches(entry, email=email, event=event, x_message_id=x_message_id)
            ]
            pending = sum(1 for i in state.heap if i.kind == "event")
            return {"events": rows, "pending": pending, "ready": len(state.ready)}

    def inbound_view(self) -> dict[str, Any]:
        state = self.state
        with state.lock:
            rows = [{**entry, **self._delivery_state(entry["delivery_id"])} for entry in state.inbound_log]
            return {"inbound": rows, "pending": sum(1 for i in state.heap if i.kind != "event")}

    def deliveries_view(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [d.summary() for d in self.state.deliveries.values()]

    def _delivery_state(self, delivery_id: int | None) -> dict[str, Any]:
        delivery = self.state.deliveries.get(delivery_id) if delivery_id is not None else None
        if delivery is None:
            return {"delivery_status": "unbatched" if delivery_id is None else "unknown", "status_code": None,
                    "attempts": 0}
        return {"delivery_status": delivery.status, "status_code": delivery.last_status_code,
                "attempts": delivery.attempts}

    def status_view(self) -> dict[str, Any]:
        state = self.state
        with state.lock:
            return {
                "messages": len(state.messages),
                "events_emitted": len(state.event_log),
                "pending": len(state.heap),
                "posts": Counter(d.status for d in state.deliveries.values()),
                "stats": dict(state.stats),
                "fault": dict(state.fault),
                "fault_hits": len(state.fault_hits),
                "suppressions": dict(state.suppressions),
                "clock": state.clock.now(),
                "public_key": state.public_key_b64,
            }

    def fault_view(self) -> dict[str, Any]:
        with self.state.lock:
            return {**self.state.fault, "hits": list(self.state.fault_hits)}
