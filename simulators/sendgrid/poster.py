"""Posting: events cut into batches, every POST signed (event webhooks) and retried with backoff.

Events the timeline emits wait in ``state.ready`` until a batch is due (count, bytes or time); replies
and one-click unsubscribes are one POST each. Poster threads take due deliveries off a heap, post them
outside the lock, and retry non-2xx answers with exponential backoff up to the configured attempts.
"""
from __future__ import annotations

import base64
import heapq
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from simulators.sendgrid.signing import sign_event_payload
from simulators.sendgrid.state import Delivery, SimState

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FINISHED = ("delivered", "failed", "no_url")
# Receivers are configured explicitly: never route them through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def url_without_credentials(url: str) -> tuple[str, str | None]:
    """A ``https://user:pass@host/path`` URL (how Inbound Parse is given basic auth credentials) as the URL
    without them and the ``Authorization: Basic`` value SendGrid sends; urllib would take them for a port."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


class Poster:
    def __init__(self, state: SimState) -> None:
        self.state = state

    # --- batching (lock held) -------------------------------------------------------------------

    def add_event(self, event: dict[str, Any], entry: dict[str, Any]) -> None:
        """An emitted event, to travel in the next batch."""
        encoded = json.dumps(event, separators=(",", ":")).encode("utf-8")
        self.state.ready.append((encoded, entry))
        self.state.ready_bytes += len(encoded) + 1

    def _batch_due(self) -> bool:
        config, state = self.state.config, self.state
        return (
            len(state.ready) >= config.batch_max_events
            or state.ready_bytes >= config.batch_max_bytes
            or time.monotonic() - state.last_cut >= config.flush_interval_seconds
        )

    def cut_batches(self, *, force: bool) -> list[Delivery]:
        """Turn ready events into signed-later POST bodies (lock held)."""
        state = self.state
        if not state.ready or not (force or self._batch_due()):
            return []
        created = []
        ready, state.ready, state.ready_bytes = state.ready, [], 0
        batch: list[tuple[bytes, dict[str, Any]]] = []
        size = 2
        for encoded, entry in ready:
            full = len(batch) >= state.config.batch_max_events
            if batch and (full or size + len(encoded) + 1 > state.config.batch_max_bytes):
                created.append(self._make_batch(batch))
                batch, size = [], 2
            batch.append((encoded, entry))
            size += len(encoded) + 1
        if batch:
            created.append(self._make_batch(batch))
        state.last_cut = time.monotonic()
        return created

    def _make_batch(self, batch: list[tuple[bytes, dict[str, Any]]]) -> Delivery:
        body = b"[" + b",".join(encoded for encoded, _ in batch) + b"]"
        delivery = self.new_delivery("events", self.state.config.webhook_url, body, "application/json", len(batch))
        for _, entry in batch:
            entry["delivery_id"] = delivery.id
        return delivery

    def new_delivery(self, kind: str, url: str | None, body: bytes, content_type: str, count: int) -> Delivery:
        """A POST to make (lock held): queued for the posters, or kept as ``no_url`` when there is no receiver."""
        state = self.state
        delivery = Delivery(
            id=next(state.ids),
            kind=kind,
            url=url,
            body=body,
            content_type=content_type,
            event_count=count,
            generation=state.generation,
            created_at=state.clock.now(),
        )
        state.deliveries[delivery.id] = delivery
        if url:
            delivery.next_at = time.monotonic()
            heapq.heappush(state.post_heap, (delivery.next_at, delivery.id, delivery))
            state.post_cv.notify()
        else:
            delivery.status = "no_url"
        return delivery

    # --- flush support (lock held) --------------------------------------------------------------

    def expedite(self, created: list[Delivery]) -> dict[int, Delivery]:
        """Every delivery still to finish (those just created and all unfinished ones), retries due now."""
        state = self.state
        now = time.monotonic()
        waiting = {d.id: d for d in created}
        for delivery in state.deliveries.values():
            if delivery.status in ("pending", "retrying", "sending"):
                waiting[delivery.id] = delivery
            if delivery.status == "retrying":
                delivery.next_at = now
        if any(d.status == "retrying" for d in waiting.values()):
            state.post_heap = [(min(at, now), i, d) for at, i, d in state.post_heap]
            heapq.heapify(state.post_heap)
        state.post_cv.notify_all()
        return waiting

    def wait_for_one_attempt(self, waiting: dict[int, Delivery], timeout: float) -> None:
        """Until each delivery finished or made one more attempt, at most ``timeout`` seconds (lock held)."""
        before = {i: d.attempts for i, d in waiting.items()}
        deadline = time.monotonic() + timeout
        while not all(
            d.status in FINISHED or (d.attempts > before[i] and d.status != "sending") for i, d in waiting.items()
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.state.post_cv.wait(min(remaining, 0.1))

    # --- the poster threads ---------------------------------------------------------------------

    def run(self, stop: Any) -> None:
        """A poster thread's loop, until ``stop`` (a threading.Event) is set."""
        while not stop.is_set():
            with self.state.post_cv:
                delivery = self._next_due(stop)
                if delivery is None:
                    return
                timeout = self.state.config.webhook_timeout_seconds
            code, error = self._post(delivery, timeout)
            with self.state.post_cv:
                self._record_attempt(delivery, code, error)
                self.state.post_cv.notify_all()

    def _next_due(self, stop: Any) -> Delivery | None:
        """Wait for the next due delivery of this generation and mark it sending (lock held)."""
        state = self.state
        while not stop.is_set():
            if not state.post_heap:
                state.post_cv.wait(0.5)
                continue
            next_at, _, candidate = state.post_heap[0]
            wait = next_at - time.monotonic()
            if wait > 0:
                state.post_cv.wait(min(wait, 0.5))
                continue
            heapq.heappop(state.post_heap)
            if candidate.generation != state.generation:
                continue
            candidate.status = "sending"
            return candidate
        return None

    def _record_attempt(self, delivery: Delivery, code: int | None, error: str | None) -> None:
        state, config = self.state, self.state.config
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = code, error
        delivery.log.append({"at": state.clock.now(), "status_code": code, "error": error})
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at = "delivered", state.clock.now()
        elif delivery.attempts >= config.webhook_max_attempts or delivery.generation != state.generation:
            delivery.status = "failed"
        else:
            backoff = min(
                config.webhook_retry_base_seconds * 2 ** (delivery.attempts - 1), config.webhook_retry_max_seconds
            )
            delivery.status, delivery.next_at = "retrying", time.monotonic() + backoff
            heapq.heappush(state.post_heap, (delivery.next_at, delivery.id, delivery))

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {"Content-Type": delivery.content_type, "User-Agent": "SendGrid Event API"}
        if delivery.kind == "events":
            timestamp = str(int(self.state.clock.now()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign_event_payload(self.state.private_key, timestamp, delivery.body)
        elif delivery.kind == "inbound":
            headers["User-Agent"] = "Sendlib/1.0 mx.sendgrid.net"
        else:
            headers["User-Agent"] = "Mozilla/5.0 (compatible; GoogleMail one-click unsubscribe)"
        return headers

    def _post(self, delivery: Delivery, timeout: float) -> tuple[int | None, str | None]:
        assert delivery.url is not None
        url, authorization = url_without_credentials(delivery.url)
        headers = self._headers(delivery)
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=delivery.body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code, None
        except Exception as exc:  # any transport failure is a failed attempt, retried like SendGrid does
            return None, f"{type(exc).__name__}: {exc}"
