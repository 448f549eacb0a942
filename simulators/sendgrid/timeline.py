"""The recipients' timelines: each accepted recipient's planned events, replies and one-click POSTs,
scheduled on the virtual clock and emitted when due.

``schedule_recipient`` plans one recipient (model.plan_recipient) onto a heap; the scheduler thread's
``tick`` emits what is due: event payloads go to the poster's next batch (duplicates always in a later
POST than their original), replies and one-click unsubscribes become one POST each.
"""
from __future__ import annotations

import base64
import heapq
import os
import random
from typing import Any

from simulators.sendgrid.config import behaviour_for
from simulators.sendgrid.inbound import build_reply, encode_multipart
from simulators.sendgrid.model import Recipient, plan_recipient
from simulators.sendgrid.poster import Poster
from simulators.sendgrid.state import Scheduled, SimState

# SendGrid suppresses an address after a hard bounce, a global unsubscribe or a spam report.
_SUPPRESSING_EVENTS = {"unsubscribe": "Unsubscribed Address", "spamreport": "Spam Reporting Address"}


def _new_event_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(18)).decode("ascii")


class Timeline:
    def __init__(self, state: SimState, poster: Poster) -> None:
        self.state = state
        self.poster = poster

    def schedule_recipient(self, rcpt: Recipient, kind: str) -> dict[str, Any]:
        """Plan one recipient's timeline (lock held); the summary the mail's record keeps."""
        state, config = self.state, self.state.config
        address = rcpt.email.lower()
        n = state.sent_counts[address]
        state.sent_counts[address] += 1
        rcpt.serial = n
        forced = behaviour_for(address, config.overrides)
        rng = random.Random(f"{config.seed}:{address}:{n}")
        suppressed = state.suppressions.get(address) if config.suppress_after_failure else None
        plan = plan_recipient(rcpt=rcpt, behaviour=forced, config=config, rng=rng, suppressed_reason=suppressed)
        for item in plan:
            heapq.heappush(
                state.heap,
                Scheduled(
                    due=rcpt.sent_at + item.due_offset * config.time_scale,
                    seq=next(state.ids),
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

    def tick(self) -> None:
        """One scheduler tick (lock held): emit what is due (unless auto_emit is off), cut due batches."""
        if self.state.config.auto_emit:
            self.emit_due(force=False)
        self.poster.cut_batches(force=False)

    def emit_due(self, *, force: bool) -> int:
        """Move due items (all of them when forced) out of the heap (lock held). Returns how many."""
        heap = self.state.heap
        now = self.state.clock.now()
        emitted = 0
        # Copies made now, and copies whose original is not in a batch yet, wait for a later pass:
        # a duplicate always travels in a later POST than its original.
        later: list[Scheduled] = []
        while heap and (force or heap[0].due <= now):
            item = heapq.heappop(heap)
            if item.original_entry is not None and item.original_entry["delivery_id"] is None:
                later.append(item)
                continue
            emitted += 1
            if item.kind == "event":
                later.extend(self._emit_event(item, now))
            elif item.kind == "inbound":
                self._emit_reply(item, now)
            elif item.kind == "oneclick":
                self._emit_oneclick(item, now)
        for item in later:
            heapq.heappush(heap, item)
        return emitted

    # --- events ---------------------------------------------------------------------------------

    def _event_payload(self, item: Scheduled, now: float) -> dict[str, Any]:
        rcpt, planned = item.rcpt, item.planned
        assert planned is not None
        timestamp = item.timestamp if self.state.config.event_timestamps == "timeline" else now
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

    def _copies(self, item: Scheduled, event: dict[str, Any], now: float) -> list[Scheduled]:
        """The planned repeats of a just-emitted event (same event again, or again with a new sg_event_id)."""
        return [
            Scheduled(
                due=now + delay * self.state.config.time_scale,
                seq=next(self.state.ids),
                kind="event",
                rcpt=item.rcpt,
                planned=None,
                timestamp=item.timestamp,
                copy_of=event,
                copy_kind="changed_id" if changed else "duplicate",
            )
            for delay, changed in (item.planned.copies if item.planned else [])
        ]

    def _emit_event(self, item: Scheduled, now: float) -> list[Scheduled]:
        """Log the event and hand it to the poster; returns the copies to schedule after this pass."""
        state = self.state
        copies: list[Scheduled] = []
        if item.copy_of is not None:
            event = dict(item.copy_of)
            if item.copy_kind == "changed_id":
                event["sg_event_id"] = _new_event_id()
        else:
            event = self._event_payload(item, now)
            self._apply_side_effects(event)
            copies = self._copies(item, event, now)
        entry = {
            "seq": len(state.event_log),
            "event": event,
            "copy": item.copy_kind,
            "of": item.copy_of["sg_event_id"] if item.copy_of is not None else None,
            "x_message_id": item.rcpt.x_message_id,
            "emitted_at": now,
            "delivery_id": None,
        }
        for copy in copies:
            copy.original_entry = entry
        state.event_log.append(entry)
        self.poster.add_event(event, entry)
        state.stats[f"event:{event['event']}"] += 1
        return copies

    def _apply_side_effects(self, event: dict[str, Any]) -> None:
        """SendGrid suppresses an address after a hard bounce, a global unsubscribe or a spam report."""
        if event["event"] == "bounce":
            reason = "Bounced Address" if event.get("type") == "bounce" else None
        else:
            reason = _SUPPRESSING_EVENTS.get(event["event"])
        if reason is not None:
            self.state.suppressions.setdefault(event["email"].lower(), reason)

    # --- replies and one-click unsubscribes -----------------------------------------------------

    def _emit_reply(self, item: Scheduled, now: float) -> None:
        assert item.planned is not None
        config = self.state.config
        rng = random.Random(f"{config.seed}:reply:{item.rcpt.email.lower()}:{item.rcpt.serial}")
        fields, headers = build_reply(
            rcpt=item.rcpt, reply_type=item.planned.name, now=now, rng=rng, raw=config.inbound_raw
        )
        body, content_type = encode_multipart(fields)
        delivery = self.poster.new_delivery("inbound", config.inbound_url, body, content_type, 1)
        self.state.inbound_log.append(
            {
                "seq": len(self.state.inbound_log),
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
        self.state.stats[f"reply:{item.planned.name}"] += 1

    def _emit_oneclick(self, item: Scheduled, now: float) -> None:
        lower = {k.lower(): v for k, v in item.rcpt.headers.items()}
        urls = [part.strip().strip("<>") for part in lower.get("list-unsubscribe", "").split(",")]
        url = next((u for u in urls if u.startswith(("https://", "http://"))), None)
        if url is None or "one-click" not in lower.get("list-unsubscribe-post", "").lower():
            # RFC 8058: without both headers a mailbox offers no one-click unsubscribe.
            status, delivery_id = "skipped: no List-Unsubscribe https URL with List-Unsubscribe-Post", None
        else:
            delivery = self.poster.new_delivery(
                "oneclick", url, b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", 1
            )
            status, delivery_id = "posted", delivery.id
        self.state.inbound_log.append(
            {
                "seq": len(self.state.inbound_log),
                "kind": "oneclick",
                "email": item.rcpt.email,
                "x_message_id": item.rcpt.x_message_id,
                "url": url,
                "status": status,
                "emitted_at": now,
                "delivery_id": delivery_id,
            }
        )
