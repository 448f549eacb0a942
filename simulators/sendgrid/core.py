"""The simulator's state and behaviour, independent of HTTP.

``Simulator`` accepts mails, keeps what it was sent, schedules each recipient's
timeline on the virtual clock, and posts due events (signed, batched) and
replies (multipart) from background threads, retrying non-2xx answers with
backoff. One lock guards the state; network I/O always happens outside it.
"""
from __future__ import annotations

import base64
import dataclasses
import heapq
import itertools
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from simulators.sendgrid import validation
from simulators.sendgrid.clock import SimClock
from simulators.sendgrid.config import SimulatorConfig, behaviour_for, config_update
from simulators.sendgrid.inbound import build_reply, encode_multipart
from simulators.sendgrid.model import Planned, Recipient, extract_links, plan_recipient
from simulators.sendgrid.signing import generate_key_pair, public_key_b64, sign_event_payload

logger = logging.getLogger("simulators.sendgrid")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_RATE_LIMIT = 10_000  # reported per second when no limit is configured; never enforced
FAULT_MODES = ("5xx", "429", "slow", "drop", "none")
# Receivers are configured explicitly: never route them through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    drop: bool = False  # close the connection without answering (after the request was read)
    delay: float = 0.0  # real seconds to sleep before answering


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, json.dumps(data).encode("utf-8"), {"Content-Type": "application/json", **(headers or {})}
    )


def error_response(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None):
    return json_response(status, {"errors": [{"message": message, "field": field, "help": None}]}, headers)


def _new_x_message_id() -> str:
    # SendGrid's ids are 22 characters of URL-safe base64 (16 random bytes).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def _new_event_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(18)).decode("ascii")


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
class _Scheduled:
    due: float
    seq: int
    kind: str = dataclasses.field(compare=False)
    rcpt: Recipient = dataclasses.field(compare=False)
    planned: Planned | None = dataclasses.field(compare=False)
    timestamp: float = dataclasses.field(compare=False)
    copy_of: dict[str, Any] | None = dataclasses.field(compare=False, default=None)
    copy_kind: str = dataclasses.field(compare=False, default="original")
    original_entry: dict[str, Any] | None = dataclasses.field(compare=False, default=None)


class _Window:
    """A fixed rate window on the virtual clock: ``limit`` requests per ``length`` seconds."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit, self.length = limit, length
        self.start, self.count = 0.0, 0

    def hit(self, now: float, *, count: bool) -> tuple[bool, int, int]:
        start = math.floor(now / self.length) * self.length
        if start != self.start:
            self.start, self.count = start, 0
        allowed = self.count < self.limit
        if allowed and count:
            self.count += 1
        return allowed, max(0, self.limit - self.count), int(math.ceil(self.start + self.length))


class Simulator:
    def __init__(
        self,
        *,
        config: SimulatorConfig,
        clock: SimClock | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SimClock()
        if private_key is None:
            private_key, _ = generate_key_pair()
        self.private_key = private_key
        self.public_key_b64 = public_key_b64(private_key)
        self._lock = threading.RLock()
        self._post_cv = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._generation = 0
        self._ids = itertools.count(1)
        self._reset_state()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads.append(threading.Thread(target=self._scheduler_loop, name="sim-scheduler", daemon=True))
        for i in range(max(1, self.config.poster_threads)):
            self._threads.append(threading.Thread(target=self._poster_loop, name=f"sim-poster-{i}", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._post_cv:
            self._post_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _reset_state(self) -> None:
        self._generation += 1
        self.messages: list[dict[str, Any]] = []
        self.senders: dict[int, dict[str, Any]] = {}
        self._sender_ids = itertools.count(1)
        self.event_log: list[dict[str, Any]] = []
        self.inbound_log: list[dict[str, Any]] = []
        self.deliveries: dict[int, Delivery] = {}
        self._heap: list[_Scheduled] = []
        self._later: list[_Scheduled] = []
        self._ready: list[tuple[bytes, dict[str, Any]]] = []
        self._ready_bytes = 0
        self._last_cut = time.monotonic()
        self._post_heap: list[tuple[float, int, Delivery]] = []
        self.suppressions: dict[str, str] = {}
        self._sent_counts: Counter[str] = Counter()
        self._fault: dict[str, Any] = {"mode": "none", "remaining": None, "delay_seconds": 0.0, "status": None}
        self._fault_hits: list[dict[str, Any]] = []
        self._windows: dict[tuple[int, float], _Window] = {}
        self.stats: Counter[str] = Counter()

    def reset(self, *, config: SimulatorConfig | None = None) -> None:
        with self._post_cv:
            self._reset_state()
            if config is not None:
                self.config = config
            self._post_cv.notify_all()

    # --- configuration and faults ----------------------------------------------------------------

    def configure(self, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.config = config_update(self.config, data)
            return self.config.as_dict()

    def set_fault(self, data: dict[str, Any]) -> dict[str, Any]:
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
        with self._lock:
            self._fault = {
                "mode": mode,
                "remaining": None if mode == "none" else count,
                "delay_seconds": float(delay),
                "status": status,
                "path": path,
            }
            return dict(self._fault)

    def _take_fault(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            fault = self._fault
            if fault["mode"] == "none" or not path.startswith(fault.get("path", "/v3/")):
                return None
            if fault["remaining"] is not None:
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    self._fault = {**fault, "mode": "none", "remaining": None}
            hit = {**fault, "path": path, "at": self.clock.now(), "n": len(self._fault_hits)}
            self._fault_hits.append(hit)
            return hit

    # --- rate limits ----------------------------------------------------------------------------

    def _rate_check(self, *, count: bool) -> tuple[bool, dict[str, str]]:
        """Count one request against the configured windows; headers SendGrid would send."""
        now = self.clock.now()
        limits = []
        if self.config.rate_limit_per_second:
            limits.append((self.config.rate_limit_per_second, 1.0))
        if self.config.rate_limit_per_minute:
            limits.append((self.config.rate_limit_per_minute, 60.0))
        if not limits:
            window = self._windows.setdefault((DEFAULT_RATE_LIMIT, 1.0), _Window(DEFAULT_RATE_LIMIT, 1.0))
            _, remaining, reset = window.hit(now, count=count)
            return True, _rate_headers(DEFAULT_RATE_LIMIT, remaining, reset)
        results = []
        for limit, length in limits:
            window = self._windows.setdefault((limit, length), _Window(limit, length))
            results.append((limit, *window.hit(now, count=False)))
        refused = [r for r in results if not r[1]]
        if refused:
            limit, _, remaining, reset = max(refused, key=lambda r: r[3])
            return False, _rate_headers(limit, 0, reset)
        if count:
            for limit, length in limits:
                self._windows[(limit, length)].hit(now, count=True)
        limit, _, remaining, reset = min(results, key=lambda r: r[2])
        return True, _rate_headers(limit, max(0, remaining - (1 if count else 0)), reset)

    # --- API: mail/send -------------------------------------------------------------------------

    def handle_api(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> Response:
        fault = self._take_fault(path)
        if fault is not None and fault["mode"] == "5xx":
            status = fault["status"] or (500 if fault["n"] % 2 == 0 else 503)
            with self._lock:
                _, rate = self._rate_check(count=False)
            message = "Internal Server Error" if status == 500 else "Service Unavailable"
            return error_response(status, message, None, rate)
        if fault is not None and fault["mode"] == "429":
            reset = int(math.ceil(self.clock.now() + max(fault["delay_seconds"], 1.0)))
            with self._lock:
                _, rate = self._rate_check(count=False)
            rate.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            return error_response(429, "too many requests", None, rate)
        response = self._route_api(method, path, headers, body, too_large)
        if fault is not None and fault["mode"] == "slow":
            response.delay = fault["delay_seconds"]
        if fault is not None and fault["mode"] == "drop":
            response.drop = True
        return response

    def _route_api(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> Response:
        route = path.split("?", 1)[0].rstrip("/")
        is_validation = route == "/v3/validations/email"
        with self._lock:
            _, rate = self._rate_check(count=False)
        auth_error = self._auth_error(headers, validation=is_validation)
        if auth_error is not None:
            status, message = auth_error
            return error_response(status, message, None, rate)
        if route == "/v3/mail/send":
            if method != "POST":
                return error_response(405, "method not allowed", None, rate)
            return self._mail_send(body, too_large)
        if too_large:
            return error_response(413, "request entity too large", None, rate)
        if route == "/v3/verified_senders":
            if method == "POST":
                return self._sender_create(body, rate)
            if method == "GET":
                return self._sender_list(rate)
        parts = route.split("/")
        if route.startswith("/v3/verified_senders/resend/") and method == "POST" and len(parts) == 5:
            return self._sender_resend(parts[4], rate)
        if route.startswith("/v3/verified_senders/") and method == "DELETE" and len(parts) == 4:
            return self._sender_delete(parts[3], rate)
        if is_validation and method == "POST":
            return self._validate_email(body, rate)
        return error_response(404, "resource not found", None, rate)

    def _auth_error(self, headers: dict[str, str], *, validation: bool) -> tuple[int, str] | None:
        value = headers.get("authorization", "")
        if not value:
            return 401, "authorization required"
        scheme, _, key = value.partition(" ")
        mail_keys = set(self.config.api_keys)
        if scheme.lower() != "bearer" or not key:
            return 401, "authorization required"
        if validation and self.config.validation_api_keys is not None:
            if key in self.config.validation_api_keys:
                return None
            return (403, "access forbidden") if key in mail_keys else (
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        if key not in mail_keys:
            return 401, "The provided authorization grant is invalid, expired, or revoked"
        return None

    def _mail_send(self, body: bytes, too_large: bool) -> Response:
        with self._lock:
            allowed, rate = self._rate_check(count=True)
        if not allowed:
            self.stats["rate_limited"] += 1
            return error_response(429, "too many requests", None, rate)
        if too_large:
            return error_response(
                413, "The size of the email is too large. Total size of your email must not exceed 30MB.", None, rate
            )
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_response(400, "Bad Request", None, rate)
        try:
            validation.validate_mail(data)
        except validation.MailError as exc:
            self.stats["rejected_400"] += 1
            return json_response(exc.status, exc.body(), rate)
        from_email = data["from"]["email"]
        with self._lock:
            if not self._sender_allowed(from_email):
                self.stats["rejected_403"] += 1
                return error_response(
                    403,
                    "The from address does not match a verified Sender Identity. Mail cannot be sent until this "
                    "error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/"
                    " to see the Sender Identity requirements",
                    "from",
                    rate,
                )
            sandbox = ((data.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True
            if sandbox:
                self.stats["sandbox"] += 1
                return Response(200, b"", rate)
            x_message_id = _new_x_message_id()
            self._accept(x_message_id, data)
        return Response(202, b"", {**rate, "X-Message-Id": x_message_id})

    def _sender_allowed(self, from_email: str) -> bool:
        if self.config.any_sender:
            return True
        address = from_email.lower()
        if address.rsplit("@", 1)[-1] in {d.lower() for d in self.config.verified_domains}:
            return True
        return any(s["from_email"].lower() == address and self._sender_verified(s) for s in self.senders.values())

    def _accept(self, x_message_id: str, data: dict[str, Any]) -> None:
        """Record the mail and schedule every recipient's timeline (lock held)."""
        now = self.clock.now()
        top_headers = data.get("headers") or {}
        top_args = data.get("custom_args") or {}
        categories = list(data.get("categories") or [])
        asm_group = (data.get("asm") or {}).get("group_id")
        tracking = data.get("tracking_settings") or {}
        open_tracking = (tracking.get("open_tracking") or {}).get("enable", True) is not False
        click_tracking = (tracking.get("click_tracking") or {}).get("enable", True) is not False
        text = html = ""
        for block in data.get("content") or []:
            if block["type"].lower() == "text/plain" and not text:
                text = block["value"]
            elif block["type"].lower() == "text/html" and not html:
                html = block["value"]
        links = extract_links(html, text)
        reply_to = (data.get("reply_to") or {}).get("email") or (
            (data.get("reply_to_list") or [{}])[0].get("email") or data["from"]["email"]
        )
        smtp_id = f"<{x_message_id}@ismtpd0001p1mdw1.sendgrid.net>"
        ip_rng = random.Random(x_message_id)
        ip = f"168.245.{ip_rng.randint(1, 120)}.{ip_rng.randint(2, 250)}"
        recipients: list[dict[str, Any]] = []
        personalizations_out = []
        index = 0
        for p in data["personalizations"]:
            headers = {**top_headers, **(p.get("headers") or {})}
            args = {**top_args, **(p.get("custom_args") or {})}
            subject = p.get("subject") or data.get("subject") or ""
            send_at = p.get("send_at") or data.get("send_at")
            sent_at = max(now, float(send_at)) if send_at else now
            lower_headers = {k.lower(): v for k, v in headers.items()}
            message_id = lower_headers.get("message-id") or smtp_id
            p_out = {"to": [], "subject": subject, "headers": headers, "custom_args": args}
            for kind in ("to", "cc", "bcc"):
                for item in p.get(kind) or []:
                    email = item["email"]
                    sg_message_id = f"{x_message_id}.filterdrecv-5645d9c87f-7xk2m-1-{int(now):X}-{index}.0"
                    rcpt = Recipient(
                        email=email,
                        name=item.get("name"),
                        x_message_id=x_message_id,
                        sg_message_id=sg_message_id,
                        smtp_id=smtp_id,
                        message_id_header=message_id,
                        references=lower_headers.get("references"),
                        subject=subject,
                        from_email=data["from"]["email"],
                        from_name=data["from"].get("name"),
                        reply_to=reply_to,
                        text=text,
                        html=html,
                        headers=headers,
                        custom_args=args,
                        categories=categories,
                        asm_group_id=asm_group,
                        links=links,
                        open_tracking=open_tracking,
                        click_tracking=click_tracking,
                        sent_at=sent_at,
                        ip=ip,
                    )
                    recipients.append(self._schedule_recipient(rcpt, kind))
                    p_out.setdefault(kind, []).append(email)
                    index += 1
            personalizations_out.append(p_out)
        first = personalizations_out[0]
        self.messages.append(
            {
                "seq": len(self.messages),
                "x_message_id": x_message_id,
                "received_at": now,
                "from": data["from"]["email"],
                "to": [r["email"] for r in recipients if r["kind"] == "to"],
                "subject": first["subject"],
                "headers": first["headers"],
                "custom_args": first["custom_args"],
                "categories": categories,
                "personalizations": personalizations_out,
                "recipients": recipients,
                "request": data,
            }
        )
        self.stats["accepted"] += 1

    def _schedule_recipient(self, rcpt: Recipient, kind: str) -> dict[str, Any]:
        address = rcpt.email.lower()
        n = self._sent_counts[address]
        self._sent_counts[address] += 1
        rcpt.serial = n
        forced = behaviour_for(address, self.config.overrides)
        rng = random.Random(f"{self.config.seed}:{address}:{n}")
        suppressed = self.suppressions.get(address) if self.config.suppress_after_failure else None
        plan = plan_recipient(
            rcpt=rcpt, behaviour=forced, config=self.config, rng=rng, suppressed_reason=suppressed
        )
        scale = self.config.time_scale
        for item in plan:
            heapq.heappush(
                self._heap,
                _Scheduled(
                    due=rcpt.sent_at + item.due_offset * scale,
                    seq=next(self._ids),
                    kind=item.kind,
                    rcpt=rcpt,
                    planned=item,
                    timestamp=rcpt.sent_at + item.offset,
                ),
            )
        return {
            "email": rcpt.email,
            "kind": kind,
            "sg_message_id": rcpt.sg_message_id,
            "smtp_id": rcpt.smtp_id,
            "message_id": rcpt.message_id_header,
            "behaviour": forced or "random",
            "planned": [p.name if p.kind == "event" else f"{p.kind}:{p.name}" for p in plan],
        }

    # --- API: verified senders and validation ----------------------------------------------------

    def _sender_verified(self, sender: dict[str, Any]) -> bool:
        if "unverified" in sender["from_email"].lower():
            return False
        delay = self.config.sender_verify_delay_seconds
        return sender["_forced"] or delay <= 0 or self.clock.now() >= sender["_created_at"] + delay

    def _sender_view(self, sender: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in sender.items() if not k.startswith("_")}
        view["verified"] = self._sender_verified(sender)
        return view

    def _sender_create(self, body: bytes, rate: dict[str, str]) -> Response:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_response(400, "invalid JSON", None, rate)
        if not isinstance(data, dict):
            return error_response(400, "invalid JSON", None, rate)
        for field in ("nickname", "from_email", "reply_to"):
            if not isinstance(data.get(field), str) or not data[field].strip():
                return error_response(400, f"{field} is required", field, rate)
        for field in ("from_email", "reply_to"):
            if not validation.is_valid_email(data[field]):
                return error_response(400, "Invalid email address", field, rate)
        with self._lock:
            sender = {
                "id": next(self._sender_ids),
                "nickname": data["nickname"],
                "from_email": data["from_email"],
                "from_name": data.get("from_name", ""),
                "reply_to": data["reply_to"],
                "reply_to_name": data.get("reply_to_name", ""),
                "address": data.get("address", ""),
                "address2": data.get("address2", ""),
                "state": data.get("state", ""),
                "city": data.get("city", ""),
                "zip": data.get("zip", ""),
                "country": data.get("country", ""),
                "verified": False,
                "locked": False,
                "_created_at": self.clock.now(),
                "_forced": False,
                "_resends": 0,
            }
            self.senders[sender["id"]] = sender
            return json_response(201, self._sender_view(sender), rate)

    def _sender_list(self, rate: dict[str, str]) -> Response:
        with self._lock:
            return json_response(200, {"results": [self._sender_view(s) for s in self.senders.values()]}, rate)

    def _sender_resend(self, raw_id: str, rate: dict[str, str]) -> Response:
        with self._lock:
            sender = self.senders.get(int(raw_id)) if raw_id.isdigit() else None
            if sender is None:
                return error_response(404, "resource not found", "id", rate)
            sender["_resends"] += 1
            return Response(204, b"", rate)

    def _sender_delete(self, raw_id: str, rate: dict[str, str]) -> Response:
        with self._lock:
            if not raw_id.isdigit() or self.senders.pop(int(raw_id), None) is None:
                return error_response(404, "resource not found", "id", rate)
            return Response(204, b"", rate)

    def sender_force_verify(self, sender_id: int) -> dict[str, Any] | None:
        with self._lock:
            sender = self.senders.get(sender_id)
            if sender is None:
                return None
            sender["_forced"] = True
            return self._sender_view(sender)

    def _validate_email(self, body: bytes, rate: dict[str, str]) -> Response:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_response(400, "invalid JSON", None, rate)
        if not isinstance(data, dict) or not isinstance(data.get("email"), str) or not data["email"].strip():
            return error_response(400, "email is required", "email", rate)
        source = data.get("source") if isinstance(data.get("source"), str) else None
        return json_response(200, {"result": validation.validate_address(data["email"], source)}, rate)

    # --- emitting events and replies -------------------------------------------------------------

    def _scheduler_loop(self) -> None:
        while not self._stop.wait(self.config.tick_seconds):
            try:
                with self._post_cv:
                    if self.config.auto_emit:
                        self._emit_due(force=False)
                    self._cut_batches(force=False)
            except Exception:  # the loop must survive a bad item; the item is logged and skipped
                logger.exception("simulator scheduler tick failed")

    def _emit_due(self, *, force: bool) -> int:
        """Move due items (all of them when forced) out of the heap (lock held). Returns how many."""
        now = self.clock.now()
        emitted = 0
        # Copies made now, and copies whose original is not in a batch yet, wait for a later pass:
        # a duplicate always travels in a later POST than its original.
        self._later: list[_Scheduled] = []
        while self._heap and (force or self._heap[0].due <= now):
            item = heapq.heappop(self._heap)
            if item.original_entry is not None and item.original_entry["delivery_id"] is None:
                self._later.append(item)
                continue
            emitted += 1
            if item.kind == "event":
                self._emit_event(item, now)
            elif item.kind == "inbound":
                self._emit_reply(item, now)
            elif item.kind == "oneclick":
                self._emit_oneclick(item, now)
        for item in self._later:
            heapq.heappush(self._heap, item)
        self._later = []
        return emitted

    def _event_payload(self, item: _Scheduled, now: float) -> dict[str, Any]:
        rcpt, planned = item.rcpt, item.planned
        assert planned is not None
        timestamp = item.timestamp if self.config.event_timestamps == "timeline" else now
        event: dict[str, Any] = {
            "email": rcpt.email,
            "timestamp": int(timestamp),
            "event": planned.name,
            "sg_event_id": _new_event_id(),
        }
        if not planned.strip_ids:
            event["sg_message_id"] = rcpt.sg_message_id
            event["smtp-id"] = rcpt.smtp_id
            if rcpt.categories:
                event["category"] = rcpt.categories[0] if len(rcpt.categories) == 1 else list(rcpt.categories)
        event.update(planned.fields)
        if rcpt.asm_group_id is not None:
            event.setdefault("asm_group_id", rcpt.asm_group_id)
        if not planned.strip_ids:
            for key, value in rcpt.custom_args.items():
                event.setdefault(key, value)  # reserved names win over custom args
        return event

    def _emit_event(self, item: _Scheduled, now: float) -> None:
        copies: list[_Scheduled] = []
        if item.copy_of is not None:
            event = dict(item.copy_of)
            if item.copy_kind == "changed_id":
                event["sg_event_id"] = _new_event_id()
        else:
            event = self._event_payload(item, now)
            self._apply_side_effects(event)
            for delay, changed in item.planned.copies if item.planned else []:
                copies.append(
                    _Scheduled(
                        due=now + delay * self.config.time_scale,
                        seq=next(self._ids),
                        kind="event",
                        rcpt=item.rcpt,
                        planned=None,
                        timestamp=item.timestamp,
                        copy_of=event,
                        copy_kind="changed_id" if changed else "duplicate",
                    )
                )
        entry = {
            "seq": len(self.event_log),
            "event": event,
            "copy": item.copy_kind,
            "of": item.copy_of["sg_event_id"] if item.copy_of is not None else None,
            "x_message_id": item.rcpt.x_message_id,
            "emitted_at": now,
            "delivery_id": None,
        }
        for copy in copies:
            copy.original_entry = entry
        self._later.extend(copies)
        self.event_log.append(entry)
        encoded = json.dumps(event, separators=(",", ":")).encode("utf-8")
        self._ready.append((encoded, entry))
        self._ready_bytes += len(encoded) + 1
        self.stats[f"event:{event['event']}"] += 1

    def _apply_side_effects(self, event: dict[str, Any]) -> None:
        """SendGrid suppresses an address after a hard bounce, a global unsubscribe or a spam report."""
        reason = None
        if event["event"] == "bounce" and event.get("type") == "bounce":
            reason = "Bounced Address"
        elif event["event"] == "unsubscribe":
            reason = "Unsubscribed Address"
        elif event["event"] == "spamreport":
            reason = "Spam Reporting Address"
        if reason is not None:
            self.suppressions.setdefault(event["email"].lower(), reason)

    def _cut_batches(self, *, force: bool) -> list[Delivery]:
        """Turn ready events into signed-later POST bodies (lock held)."""
        if not self._ready:
            return []
        due = (
            force
            or len(self._ready) >= self.config.batch_max_events
            or self._ready_bytes >= self.config.batch_max_bytes
            or time.monotonic() - self._last_cut >= self.config.flush_interval_seconds
        )
        if not due:
            return []
        created = []
        ready, self._ready, self._ready_bytes = self._ready, [], 0
        batch: list[tuple[bytes, dict[str, Any]]] = []
        size = 2
        for encoded, entry in ready:
            full = len(batch) >= self.config.batch_max_events
            if batch and (full or size + len(encoded) + 1 > self.config.batch_max_bytes):
                created.append(self._make_batch(batch))
                batch, size = [], 2
            batch.append((encoded, entry))
            size += len(encoded) + 1
        if batch:
            created.append(self._make_batch(batch))
        self._last_cut = time.monotonic()
        return created

    def _make_batch(self, batch: list[tuple[bytes, dict[str, Any]]]) -> Delivery:
        body = b"[" + b",".join(encoded for encoded, _ in batch) + b"]"
        delivery = self._new_delivery("events", self.config.webhook_url, body, "application/json", len(batch))
        for _, entry in batch:
            entry["delivery_id"] = delivery.id
        return delivery

    def _new_delivery(self, kind: str, url: str | None, body: bytes, content_type: str, count: int) -> Delivery:
        delivery = Delivery(
            id=next(self._ids),
            kind=kind,
            url=url,
            body=body,
            content_type=content_type,
            event_count=count,
            generation=self._generation,
            created_at=self.clock.now(),
        )
        self.deliveries[delivery.id] = delivery
        if url:
            delivery.next_at = time.monotonic()
            heapq.heappush(self._post_heap, (delivery.next_at, delivery.id, delivery))
            self._post_cv.notify()
        else:
            delivery.status = "no_url"
        return delivery

    def _emit_reply(self, item: _Scheduled, now: float) -> None:
        assert item.planned is not None
        rng = random.Random(f"{self.config.seed}:reply:{item.rcpt.email.lower()}:{item.rcpt.serial}")
        fields, headers = build_reply(
            rcpt=item.rcpt, reply_type=item.planned.name, now=now, rng=rng, raw=self.config.inbound_raw
        )
        body, content_type = encode_multipart(fields)
        delivery = self._new_delivery("inbound", self.config.inbound_url, body, content_type, 1)
        self.inbound_log.append(
            {
                "seq": len(self.inbound_log),
                "kind": "reply",
                "reply_type": item.planned.name,
                "email": item.rcpt.email,
                "x_message_id": item.rcpt.x_message_id,
                "headers": headers,
                "fields": dict(fields),
                "emitted_at": now,
                "delivery_id": delivery.id,
            }
        )
        self.stats[f"reply:{item.planned.name}"] += 1

    def _emit_oneclick(self, item: _Scheduled, now: float) -> None:
        lower = {k.lower(): v for k, v in item.rcpt.headers.items()}
        urls = [part.strip().strip("<>") for part in lower.get("list-unsubscribe", "").split(",")]
        url = next((u for u in urls if u.startswith(("https://", "http://"))), None)
        if url is None or "one-click" not in lower.get("list-unsubscribe-post", "").lower():
            # RFC 8058: without both headers a mailbox offers no one-click unsubscribe.
            status, delivery_id = "skipped: no List-Unsubscribe https URL with List-Unsubscribe-Post", None
        else:
            delivery = self._new_delivery(
                "oneclick", url, b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", 1
            )
            status, delivery_id = "posted", delivery.id
        self.inbound_log.append(
            {
                "seq": len(self.inbound_log),
                "kind": "oneclick",
                "email": item.rcpt.email,
                "x_message_id": item.rcpt.x_message_id,
                "url": url,
                "status": status,
                "emitted_at": now,
                "delivery_id": delivery_id,
            }
        )

    def flush(self, *, wait: bool = True, timeout: float = 10.0) -> dict[str, Any]:
        """Emit every pending item now (duplicates in later batches), expedite retries, wait for one attempt each."""
        created: list[Delivery] = []
        emitted = 0
        with self._post_cv:
            for _ in range(100):  # duplicates of emitted events land in the heap; drain them in later batches
                created += self._cut_batches(force=True)
                emitted += self._emit_due(force=True)
                created += self._cut_batches(force=True)
                if not self._heap:
                    break
            now = time.monotonic()
            waiting = {d.id: d for d in created}
            for delivery in self.deliveries.values():
                if delivery.status in ("pending", "retrying", "sending"):
                    waiting[delivery.id] = delivery
                if delivery.status == "retrying":
                    delivery.next_at = now
            if any(d.status == "retrying" for d in waiting.values()):
                self._post_heap = [(min(at, now), i, d) for at, i, d in self._post_heap]
                heapq.heapify(self._post_heap)
            self._post_cv.notify_all()
            before = {i: d.attempts for i, d in waiting.items()}
            if wait:
                deadline = time.monotonic() + timeout
                while not all(
                    d.status in ("delivered", "failed", "no_url")
                    or (d.attempts > before[i] and d.status != "sending")
                    for i, d in waiting.items()
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._post_cv.wait(min(remaining, 0.1))
            return {
                "emitted": emitted,
                "posts": len(waiting),
                "delivered": sum(1 for d in waiting.values() if d.status == "delivered"),
                "not_delivered": sum(1 for d in waiting.values() if d.status != "delivered"),
                "pending": len(self._heap),
            }

    def _poster_loop(self) -> None:
        while not self._stop.is_set():
            with self._post_cv:
                delivery = None
                while not self._stop.is_set():
                    if self._post_heap:
                        next_at, _, candidate = self._post_heap[0]
                        wait = next_at - time.monotonic()
                        if wait <= 0:
                            heapq.heappop(self._post_heap)
                            if candidate.generation != self._generation:
                                continue
                            delivery = candidate
                            delivery.status = "sending"
                            break
                        self._post_cv.wait(min(wait, 0.5))
                    else:
                        self._post_cv.wait(0.5)
                if delivery is None:
                    return
                timeout = self.config.webhook_timeout_seconds
            code, error = self._post(delivery, timeout)
            with self._post_cv:
                delivery.attempts += 1
                delivery.last_status_code, delivery.last_error = code, error
                delivery.log.append({"at": self.clock.now(), "status_code": code, "error": error})
                if code is not None and 200 <= code < 300:
                    delivery.status, delivery.delivered_at = "delivered", self.clock.now()
                elif delivery.attempts >= self.config.webhook_max_attempts or delivery.generation != self._generation:
                    delivery.status = "failed"
                else:
                    backoff = min(
                        self.config.webhook_retry_base_seconds * 2 ** (delivery.attempts - 1),
                        self.config.webhook_retry_max_seconds,
                    )
                    delivery.status, delivery.next_at = "retrying", time.monotonic() + backoff
                    heapq.heappush(self._post_heap, (delivery.next_at, delivery.id, delivery))
                self._post_cv.notify_all()

    def _post(self, delivery: Delivery, timeout: float) -> tuple[int | None, str | None]:
        assert delivery.url is not None
        headers = {"Content-Type": delivery.content_type, "User-Agent": "SendGrid Event API"}
        if delivery.kind == "events":
            timestamp = str(int(self.clock.now()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign_event_payload(self.private_key, timestamp, delivery.body)
        elif delivery.kind == "inbound":
            headers["User-Agent"] = "Sendlib/1.0 mx.sendgrid.net"
        else:
            headers["User-Agent"] = "Mozilla/5.0 (compatible; GoogleMail one-click unsubscribe)"
        request = urllib.request.Request(delivery.url, data=delivery.body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code, None
        except Exception as exc:  # any transport failure is a failed attempt, retried like SendGrid does
            return None, f"{type(exc).__name__}: {exc}"

    # --- inspection -----------------------------------------------------------------------------

    def messages_view(
        self, *, to: str | None = None, x_message_id: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        with self._lock:
            out = self.messages[since:]
        if to:
            out = [m for m in out if any(r["email"].lower() == to.lower() for r in m["recipients"])]
        if x_message_id:
            out = [m for m in out if m["x_message_id"] == x_message_id]
        return out

    def events_view(
        self, *, email: str | None = None, event: str | None = None, x_message_id: str | None = None, since: int = 0
    ) -> dict[str, Any]:
        with self._lock:
            rows = []
            for entry in self.event_log[since:]:
                ev = entry["event"]
                if email and ev["email"].lower() != email.lower():
                    continue
                if event and ev["event"] != event:
                    continue
                if x_message_id and entry["x_message_id"] != x_message_id:
                    continue
                rows.append({**entry, **self._delivery_state(entry["delivery_id"])})
            pending = sum(1 for i in self._heap if i.kind == "event")
            return {"events": rows, "pending": pending, "ready": len(self._ready)}

    def inbound_view(self) -> dict[str, Any]:
        with self._lock:
            rows = [{**entry, **self._delivery_state(entry["delivery_id"])} for entry in self.inbound_log]
            return {"inbound": rows, "pending": sum(1 for i in self._heap if i.kind != "event")}

    def deliveries_view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.summary() for d in self.deliveries.values()]

    def _delivery_state(self, delivery_id: int | None) -> dict[str, Any]:
        delivery = self.deliveries.get(delivery_id) if delivery_id is not None else None
        if delivery is None:
            return {"delivery_status": "unbatched" if delivery_id is None else "unknown", "status_code": None,
                    "attempts": 0}
        return {"delivery_status": delivery.status, "status_code": delivery.last_status_code,
                "attempts": delivery.attempts}

    def status_view(self) -> dict[str, Any]:
        with self._lock:
            return {
                "messages": len(self.messages),
                "events_emitted": len(self.event_log),
                "pending": len(self._heap),
                "posts": Counter(d.status for d in self.deliveries.values()),
                "stats": dict(self.stats),
                "fault": dict(self._fault),
                "fault_hits": len(self._fault_hits),
                "suppressions": dict(self.suppressions),
                "clock": self.clock.now(),
                "public_key": self.public_key_b64,
            }

    def fault_view(self) -> dict[str, Any]:
        with self._lock:
            return {**self._fault, "hits": list(self._fault_hits)}


def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}
