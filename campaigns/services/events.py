"""Events through the engine: the hot path, and stopping every campaign that reaches an address.

`contact_campaigns_handle_events` does a fixed number of statements per chunk of contact campaigns, whatever
the number of events: lock the chunk in id order, run each event through the pure core, flush the unit of
work. Rules and choices: docs/engine.md.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from campaigns import engine
from campaigns.dsl import POLICY_EVENTS
from campaigns.engine import EngineEvent, TransitionRecord
from campaigns.models import ContactCampaign
from campaigns.services.locking import HANDLE_CHUNK, LIVE_STATUSES, LockedRow, lock_rows
from campaigns.services.work import Work
from outreach import clock
from outreach.errors import ApplicationError


@dataclass(frozen=True)
class HandleResult:
    """What one event did to its contact campaign."""

    contact_campaign_id: int
    outcome: str  # engine outcome (moved, stopped, updated, recorded, stale, held) or "missing"
    status: str = ""
    current_node_id: str = ""
    node_visit: int = 0
    transitions: tuple[TransitionRecord, ...] = ()

    @property
    def moved(self) -> bool:
        return self.outcome in (engine.MOVED, engine.STOPPED_OUTCOME)


def contact_campaign_handle_event(*, contact_campaign_id: int, event: EngineEvent) -> HandleResult:
    """Run one event through the engine (see `contact_campaigns_handle_events` for the batch form)."""
    return contact_campaigns_handle_events(items=[(contact_campaign_id, event)])[0]


def contact_campaigns_handle_events(*, items: Sequence[tuple[int, EngineEvent]]) -> list[HandleResult]:
    """Run many events; returns one result per item, in input order.

    Events of one contact campaign are applied in the order given. Contact campaigns are locked in id order,
    HANDLE_CHUNK per transaction, and each chunk costs a fixed handful of statements.
    """
    return handle_items(list(items), action_ids=None)


def handle_items(items: list[tuple[int, EngineEvent]], *, action_ids: list[int | None] | None
                  ) -> list[HandleResult]:
    results: list[HandleResult | None] = [None] * len(items)
    by_cc: dict[int, list[int]] = defaultdict(list)
    for index, (cc_id, _) in enumerate(items):
        by_cc[cc_id].append(index)
    cc_ids = sorted(by_cc)
    for start in range(0, len(cc_ids), HANDLE_CHUNK):
        chunk = cc_ids[start:start + HANDLE_CHUNK]
        with transaction.atomic():
            _handle_chunk(chunk, by_cc, items, action_ids, results)
    return [r if r is not None else HandleResult(contact_campaign_id=items[i][0], outcome="missing")
            for i, r in enumerate(results)]


def _handle_chunk(chunk: list[int], by_cc: dict[int, list[int]], items: list[tuple[int, EngineEvent]],
                  action_ids: list[int | None] | None, results: list[HandleResult | None]) -> None:
    now = clock.now()
    rows = lock_rows(chunk)
    live_actions: set[int] = set()
    if action_ids is not None:
        wanted = [action_ids[i] for cc_id in chunk for i in by_cc[cc_id] if action_ids[i] is not None]
        if wanted:
            with connection.cursor() as cursor:
                # Locked after the contact campaigns (the same order as every other writer), re-checked under lock:
                # a duplicate delivery of the same action ids finds them done and does nothing.
                cursor.execute(
                    "SELECT id FROM scheduled_actions WHERE id = ANY(%s) AND status = 'claimed' ORDER BY id FOR UPDATE",
                    [wanted],
                )
                live_actions = {r[0] for r in cursor.fetchall()}
    work = Work(now)
    for cc_id in chunk:
        row = rows.get(cc_id)
        for index in by_cc[cc_id]:
            action_id = action_ids[index] if action_ids is not None else None
            if row is None:
                if action_id in live_actions:
                    work.done_action_ids.append(action_id)
                continue
            if action_ids is not None and action_id is not None and action_id not in live_actions:
                results[index] = _result(row, engine.STALE, ())
                continue
            decision = engine.decide(row.plan, row.state, items[index][1], now)
            work.apply(row, decision)
            if action_id is not None:
                (work.held_action_ids if decision.outcome == engine.HELD else work.done_action_ids).append(action_id)
            results[index] = _result(row, decision.outcome, tuple(decision.transitions))
    work.flush(rows)


def _result(row: LockedRow, outcome: str, transitions: tuple[TransitionRecord, ...]) -> HandleResult:
    return HandleResult(contact_campaign_id=row.id, outcome=outcome, status=row.state.status,
                        current_node_id=row.state.current_node_id, node_visit=row.state.node_visit,
                        transitions=transitions)


def contact_campaigns_stop_for_address(*, tenant_id: int, channel: str, value: str, reason: str,
                                       event_type: str) -> int:
    """Stop every live contact campaign of the tenant that reaches this address (an opt-out, a suppression).

    `event_type` is the policy event recorded (`unsubscribe`, `stop_request`, `spamreport`, ...); `reason` is
    the stop reason kept on the contact campaign. Returns how many contact campaigns stopped.
    """
    if event_type not in POLICY_EVENTS:
        raise ApplicationError(f"{event_type!r} is not a policy event; use one of {', '.join(sorted(POLICY_EVENTS))}.",
                               field="event_type")
    value = (value or "").strip()
    if not value:
        return 0
    if channel == "email":
        address = Q(contact__email=value.lower())
    elif channel == "sms":
        address = Q(contact__phone=value)
    else:
        address = Q(pk__in=[])
    address |= Q(contact__channels__channel=channel, contact__channels__value=value)
    ids = sorted(set(
        ContactCampaign.objects.filter(address, tenant_id=tenant_id, channel=channel, status__in=LIVE_STATUSES)
        .values_list("id", flat=True)
    ))
    if not ids:
        return 0
    now = clock.now()
    detail: dict[str, Any] = {"stop_reason": reason, "address": value}
    if event_type == "bounce":
        detail["bounce_type"] = "hard"
    results = contact_campaigns_handle_events(items=[(cc_id, EngineEvent(type=event_type, occurred_at=now,
                                                                         detail=detail)) for cc_id in ids])
    return sum(1 for r in results if r.outcome == engine.STOPPED_OUTCOME)
