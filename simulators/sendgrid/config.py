"""The simulator's knobs: one dataclass, changeable at runtime through POST /_sim/config."""
from __future__ import annotations

import dataclasses
import random
import re
import secrets
from typing import Any

# Behaviours a recipient can be forced into, by local part (``bounce@``, ``bounce+7@``,
# ``bounce-x@``) or by a full address in ``SimulatorConfig.overrides``.
BEHAVIOURS: dict[str, str] = {
    "bounce": "hard bounce (type=bounce, 5.1.1, Invalid Address)",
    "block": "soft bounce (type=blocked, 4.7.0, Reputation)",
    "defer": "deferred once, delivered later",
    "drop": "dropped (reason Invalid), nothing else",
    "open": "delivered, one human open",
    "machine": "delivered, machine open only (sg_machine_open true)",
    "click": "delivered, human open, click on the first link",
    "scanner": "delivered, every link clicked within seconds by a link scanner",
    "reply": "delivered, open, a human reply showing interest (Inbound Parse)",
    "ooo": "delivered, an out-of-office auto-reply (Auto-Submitted: auto-replied)",
    "stop": "delivered, open, a reply asking to stop",
    "unsub": "delivered, open, unsubscribe event (group_unsubscribe when the mail has asm.group_id)",
    "oneclick": "delivered, the mailbox POSTs List-Unsubscribe=One-Click to the List-Unsubscribe https URL",
    "spam": "delivered, spamreport event",
    "silent": "delivered, nothing else",
}

_OVERRIDE_RE = re.compile(r"^(?P<kw>[a-z]+?)(?:[+._-].*|\d+)?$")


def behaviour_for(email: str, overrides: dict[str, str]) -> str | None:
    """The forced behaviour for an address, or None to let the random model decide."""
    address = email.strip().lower()
    if address in overrides:
        return overrides[address]
    local = address.split("@", 1)[0]
    if local in overrides:
        return overrides[local]
    match = _OVERRIDE_RE.match(local)
    if match and match.group("kw") in BEHAVIOURS:
        return match.group("kw")
    return None


@dataclasses.dataclass
class Rates:
    """Probabilities for addresses without an override. Delivered = 1 - hard_bounce - soft_bounce - dropped."""

    hard_bounce: float = 0.03
    soft_bounce: float = 0.01
    dropped: float = 0.0
    deferred: float = 0.02
    human_open: float = 0.30
    machine_open: float = 0.35
    click: float = 0.15  # of human openers
    scanner_click: float = 0.05  # of delivered mails that carry links
    reply: float = 0.04  # of delivered
    ooo: float = 0.03  # of delivered
    stop: float = 0.01  # of delivered
    unsubscribe: float = 0.01  # of delivered
    spam_report: float = 0.002  # of delivered
    reply_positive_share: float = 0.5  # of human replies; the rest neutral/negative
    reply_negative_share: float = 0.2


# A simulator started without keys accepts only this one, random per process: no other installation that
# happens to reach it with a default key gets its mail accepted (and its events posted here).
RUN_API_KEY = f"SG.sim-{secrets.token_urlsafe(24)}"


@dataclasses.dataclass
class SimulatorConfig:
    seed: int = 0
    api_keys: list[str] = dataclasses.field(default_factory=lambda: [RUN_API_KEY])
    # SendGrid wants a separate key for Email Validation; None = the mail keys work too.
    validation_api_keys: list[str] | None = None
    any_sender: bool = True
    verified_domains: list[str] = dataclasses.field(default_factory=list)
    sender_verify_delay_seconds: float = 0.0  # virtual seconds; 0 = verified at once
    webhook_url: str | None = None
    inbound_url: str | None = None
    inbound_raw: bool = False
    rates: Rates = dataclasses.field(default_factory=Rates)
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    rate_limit_per_second: int | None = None
    rate_limit_per_minute: int | None = None
    # Virtual offsets (open +2 h) are multiplied by this before scheduling: 0 = everything due at once.
    time_scale: float = 1.0
    # "timeline": an event's timestamp is send time + its unscaled offset (realistic spacing even when
    # time_scale compresses delivery); "emitted": the clock when it is posted.
    event_timestamps: str = "timeline"
    # False: nothing is posted until POST /_sim/flush (deterministic tests); True: posted when due.
    auto_emit: bool = True
    batch_max_events: int = 1000
    batch_max_bytes: int = 768 * 1024
    flush_interval_seconds: float = 1.0  # real seconds between webhook POSTs of due events
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 8
    webhook_retry_base_seconds: float = 1.0  # real seconds, doubled per attempt
    webhook_retry_max_seconds: float = 600.0
    poster_threads: int = 2
    duplicate_rate: float = 0.0  # the same event again in a later batch
    duplicate_max_copies: int = 1
    changed_id_duplicate_rate: float = 0.0  # the same event again with a new sg_event_id
    out_of_order_rate: float = 0.0  # delivered posted after the first open/click
    async_bounce_rate: float = 0.0  # share of hard bounces that arrive late without sg_message_id
    # After a hard bounce, unsubscribe or spam report, later mail to the address is dropped like SendGrid does.
    suppress_after_failure: bool = True
    tick_seconds: float = 0.02
    # The provider's answer time on /v3 calls, real milliseconds (issue 19: benchmarks see what production
    # sees): mean, varied uniformly by +/- jitter, slept in the request's thread outside the simulator lock;
    # plus a one-off cost on a connection's first request (SendGrid's TLS handshake).
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    connection_setup_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def answer_delay(self, rng: random.Random, *, first_on_connection: bool) -> float:
        """Seconds an /v3 answer waits: the latency knob (0 when it is off)."""
        delay = self.latency_ms
        if self.latency_jitter_ms:
            delay += rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        if first_on_connection:
            delay += self.connection_setup_ms
        return max(delay, 0.0) / 1000.0


_FLOAT_RATE_FIELDS = {
    "duplicate_rate",
    "changed_id_duplicate_rate",
    "out_of_order_rate",
    "async_bounce_rate",
}


def _coerce(name: str, value: Any, current: Any, annotation: str) -> Any:
    if "list[str]" in annotation:
        if value is None and "None" in annotation:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name}: expected a list of strings")
        return value
    if annotation.startswith("dict"):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"{name}: expected an object of strings")
        bad = sorted(v for v in value.values() if v not in BEHAVIOURS)
        if bad:
            raise ValueError(f"{name}: unknown behaviours {bad}; known: {sorted(BEHAVIOURS)}")
        return {k.strip().lower(): v for k, v in value.items()}
    if value is None:
        if "None" in annotation:
            return None
        raise ValueError(f"{name}: may not be null")
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true/false")
        return value
    if annotation.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: expected a non-negative integer")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name}: expected a non-negative number")
        if (name in _FLOAT_RATE_FIELDS) and value > 1:
            raise ValueError(f"{name}: a probability is at most 1")
        return float(value)
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
        if name == "event_timestamps" and value not in ("timeline", "emitted"):
            raise ValueError("event_timestamps: 'timeline' or 'emitted'")
        return value
    raise ValueError(f"{name}: cannot be changed")


def config_update(config: SimulatorConfig, data: dict[str, Any]) -> SimulatorConfig:
    """A new config with ``data`` applied; ValueError naming the first bad field. ``rates`` merges."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    fields = {f.name: f for f in dataclasses.fields(SimulatorConfig)}
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            raise ValueError(f"unknown setting {name!r}; known: {sorted(fields)}")
        if name == "rates":
            changes["rates"] = rates_update(config.rates, value)
            continue
        annotation = str(fields[name].type)
        changes[name] = _coerce(name, value, getattr(config, name), annotation)
    return dataclasses.replace(config, **changes)


def rates_update(rates: Rates, data: Any) -> Rates:
    if not isinstance(data, dict):
        raise ValueError("rates: expected an object")
    known = {f.name for f in dataclasses.fields(Rates)}
    changes: dict[str, float] = {}
    for name, value in data.items():
        if name not in known:
            raise ValueError(f"rates: unknown rate {name!r}; known: {sorted(known)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"rates.{name}: expected a probability between 0 and 1")
        changes[name] = float(value)
    new = dataclasses.replace(rates, **changes)
    if new.hard_bounce + new.soft_bounce + new.dropped > 1:
        raise ValueError("rates: hard_bounce + soft_bounce + dropped exceed 1")
    return new
