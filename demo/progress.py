"""Progress of a run: one query's worth of counters, when nothing is left to happen, and the summary tables.

`snapshot()` reads the counters, `is_settled()` says whether the run is over (every enrolment final, no
timer or message in flight, every webhook stored and processed, the simulator idle), `wait_until_settled()`
polls until it is, `summary_by_status()` / `summary_by_node()` print the end result.

Imports the apps' models: import it after django.setup() (demo/run_demo.py does; pytest-django does for
the tests).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from campaigns.interface import ContactCampaign
from campaigns.models import ScheduledAction
from demo.processes import ProcessGroup, sim_get


@dataclass
class Snapshot:
    virtual_now: dt.datetime | None
    messages: dict[str, int]  # outbound status -> count
    sent: int
    delivered: int
    human_opens: int
    machine_opens: int
    human_clicks: int
    scanner_clicks: int
    replies: int
    auto_replies: int
    bounces: int
    spam_reports: int
    unsubscribes: int
    suppressions: int
    enrolments: dict[str, int]  # contact campaign status -> count
    pending_actions: int
    webhook_pending: int
    webhook_failed: int

    @property
    def total_enrolments(self) -> int:
        return sum(self.enrolments.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.enrolments.items() if status in FINAL_STATUSES)

    @property
    def running(self) -> int:
        return self.total_enrolments - self.finished

    def line(self, *, started: dt.datetime | None = None) -> str:
        clock = self.virtual_now.strftime("%a %Y-%m-%d %H:%M") if self.virtual_now else "?"
        elapsed = ""
        if started and self.virtual_now:
            delta = self.virtual_now - started
            elapsed = f" (+{delta.days}d{delta.seconds // 3600:02d}h)"
        return (f"[{clock}{elapsed}] sent {self.sent}  delivered {self.delivered}  opens {self.human_opens}"
                f" (+{self.machine_opens} machine)  clicks {self.human_clicks}  replies {self.replies}"
                f" (+{self.auto_replies} auto)  bounces {self.bounces}  unsubscribes {self.unsubscribes}"
                f"  spam {self.spam_reports} | enrolments: {self.running} running, {self.finished} finished"
                f" of {self.total_enrolments}")


FINAL_STATUSES = ("completed", "stopped", "canceled", "failed")
UNSUBSCRIBE_EVENTS = ("unsubscribe", "group_unsubscribe")

_SNAPSHOT_SQL = """
SELECT
  (SELECT coalesce(json_object_agg(status, n), '{}') FROM
     (SELECT status, count(*) AS n FROM outbound_messages GROUP BY status) s),
  (SELECT count(*) FROM outbound_messages WHERE sent_at IS NOT NULL),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'delivered'),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'open' AND NOT is_machine),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'open' AND is_machine),
  (SELECT count(DISTINCT outbound_message_id) FROM message_events WHERE event_type = 'click' AND NOT is_machine),
  (SELECT count(*) FROM message_events WHERE event_type = 'click' AND is_machine),
  (SELECT count(*) FROM inbound_messages WHERE NOT is_auto_reply),
  (SELECT count(*) FROM inbound_messages WHERE is_auto_reply),
  (SELECT count(DISTINCT lower(email)) FROM message_events WHERE event_type = 'bounce'),
  (SELECT count(DISTINCT lower(email)) FROM message_events WHERE event_type = 'spamreport'),
  (SELECT count(*) FROM contact_unsubscribes),
  (SELECT count(*) FROM communication_suppressions),
  (SELECT coalesce(json_object_agg(status, n), '{}') FROM
     (SELECT status, count(*) AS n FROM contact_campaigns GROUP BY status) c),
  (SELECT count(*) FROM scheduled_actions WHERE status IN ('pending', 'claimed')),
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')
"""


def _json(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def snapshot(*, anchor: Any = None) -> Snapshot:
    """Progress counters in one statement (the demo database holds one tenant; tests use their own DB)."""
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT_SQL)
        row = cursor.fetchone()
    return Snapshot(
        virtual_now=anchor.virtual_now() if anchor is not None else None,
        messages=_json(row[0]), sent=row[1], delivered=row[2], human_opens=row[3], machine_opens=row[4],
        human_clicks=row[5], scanner_clicks=row[6], replies=row[7], auto_replies=row[8], bounces=row[9],
        spam_reports=row[10], unsubscribes=row[11], suppressions=row[12], enrolments=_json(row[13]),
        pending_actions=row[14], webhook_pending=row[15], webhook_failed=row[16],
    )


def sim_settled(sim_url: str) -> tuple[bool, str]:
    """True when the simulator has nothing left to emit or post."""
    status = sim_get(sim_url, "/_sim/status")
    posts = status.get("posts") or {}
    busy = {k: v for k, v in posts.items() if k in ("pending", "sending", "retrying") and v}
    if status.get("pending") or busy:
        return False, f"simulator: {status.get('pending', 0)} scheduled, posts {busy}"
    events = sim_get(sim_url, "/_sim/events?event=__none__")
    if events.get("ready"):
        return False, f"simulator: {events['ready']} events not batched yet"
    return True, ""


def is_settled(snap: Snapshot, *, sim_url: str | None) -> tuple[bool, str]:
    """Every enrolment final, no timer or message in flight, every webhook stored and processed."""
    if snap.total_enrolments == 0:
        return False, "no enrolments yet"
    if snap.running:
        return False, f"{snap.running} enrolments still running"
    in_flight = {k: v for k, v in snap.messages.items() if k in ("queued", "sending") and v}
    if in_flight:
        return False, f"messages in flight: {in_flight}"
    if snap.pending_actions:
        return False, f"{snap.pending_actions} scheduled actions pending"
    if snap.webhook_pending:
        return False, f"{snap.webhook_pending} webhook deliveries not processed"
    if sim_url:
        settled, why = sim_settled(sim_url)
        if not settled:
            return False, why
    return True, ""


def wait_until_settled(*, sim_url: str | None, anchor: Any, timeout: float, group: ProcessGroup | None = None,
                       progress: Callable[[Snapshot, str], None] | None = None, progress_every: float = 5.0,
                       settle_confirmations: int = 2) -> tuple[bool, Snapshot, str]:
    """Poll until `is_settled` holds on consecutive polls (or timeout); returns (settled, last snapshot, why not)."""
    deadline = time.monotonic() + timeout
    next_progress = 0.0
    confirmations = 0
    snap = snapshot(anchor=anchor)
    why = ""
    while True:
        if group is not None:
            group.assert_alive()
        snap = snapshot(anchor=anchor)
        now = time.monotonic()
        settled, why = is_settled(snap, sim_url=sim_url)
        if progress is not None and now >= next_progress:
            progress(snap, why)
            next_progress = now + progress_every
        confirmations = confirmations + 1 if settled else 0
        if confirmations >= settle_confirmations:
            return True, snap, ""
        if now > deadline:
            return False, snap, why
        time.sleep(1.0 if not settled else 1.5)


# --------------------------------------------------------------------------------------------- summary tables


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in cells[1:]]
    return "\n".join(lines)


def summary_by_status() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, coalesce(nullif(stop_reason, ''), '-'), count(*) FROM contact_campaigns "
                       "GROUP BY 1, 2 ORDER BY 1, 3 DESC")
        rows = [list(r) for r in cursor.fetchall()]
    return _table(["enrolment status", "reason", "contacts"], rows)


_BY_NODE_SQL = """
WITH ev AS (
    SELECT outbound_message_id AS id,
           bool_or(event_type = 'delivered') AS delivered,
           bool_or(event_type = 'open' AND NOT is_machine) AS human_open,
           bool_or(event_type = 'click' AND NOT is_machine) AS human_click,
           bool_or(event_type = 'bounce') AS bounced,
           bool_or(event_type IN ('unsubscribe', 'group_unsubscribe')) AS unsubscribed,
           bool_or(event_type = 'spamreport') AS spam
    FROM message_events WHERE outbound_message_id IS NOT NULL GROUP BY outbound_message_id
), rep AS (
    SELECT outbound_message_id AS id, bool_or(NOT is_auto_reply) AS human, bool_or(is_auto_reply) AS auto,
           bool_or(stop_request) AS stop
    FROM inbound_messages WHERE outbound_message_id IS NOT NULL GROUP BY outbound_message_id
)
SELECT om.node_id,
       count(*) FILTER (WHERE om.sent_at IS NOT NULL),
       count(*) FILTER (WHERE ev.delivered),
       count(*) FILTER (WHERE ev.human_open),
       count(*) FILTER (WHERE ev.human_click),
       count(*) FILTER (WHERE rep.human),
       count(*) FILTER (WHERE rep.auto),
       count(*) FILTER (WHERE ev.bounced),
       count(*) FILTER (WHERE ev.unsubscribed OR rep.stop),
       count(*) FILTER (WHERE ev.spam),
       count(*) FILTER (WHERE om.status IN ('suppressed', 'canceled'))
FROM outbound_messages om
LEFT JOIN ev ON ev.id = om.id
LEFT JOIN rep ON rep.id = om.id
GROUP BY om.node_id ORDER BY min(om.id)
"""


def summary_by_node() -> str:
    with connection.cursor() as cursor:
        cursor.execute(_BY_NODE_SQL)
        rows = [list(r) for r in cursor.fetchall()]
    totals = ["total"] + [sum(r[i] for r in rows) for i in range(1, 11)]
    return _table(["node", "sent", "delivered", "opens", "clicks", "replies", "auto-replies", "bounces",
                   "opt-outs", "spam", "not sent"], rows + [totals])




def stuck_enrolments(limit: int = 15) -> str:
    """Why enrolments are not final yet: their node and pending actions (for a timed-out run)."""
    lines = []
    for cc in ContactCampaign.objects.exclude(status__in=FINAL_STATUSES).select_related("contact")[:limit]:
        actions = list(ScheduledAction.objects.filter(contact_campaign=cc).exclude(status__in=["done", "canceled"])
                       .values_list("kind", "node_id", "status", "due_at"))
        pending = ", ".join(f"{k} {n} {s} due {d:%Y-%m-%d %H:%M}" for k, n, s, d in actions) or "no pending action"
        lines.append(f"  contact campaign {cc.pk} {cc.contact.email}: {cc.status} at {cc.current_node_id or '-'}; "
                     f"{pending}")
    return "\n".join(lines)
