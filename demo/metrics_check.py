"""After a run: the rollups against raw events (analytics_verify) and against the simulator's own event log,
and the campaign's metrics as the API serves them.

Imports the apps' models: import it after django.setup().
"""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from django.db.models import Max, Min, Sum

from analytics.models import TenantDaily
from analytics.recount import DayRange, rollups_verify
from demo.processes import sim_get
from messaging.interface import MessageEvent
from messaging.models import WebhookDelivery

# Rollup counts -> the SendGrid event types they count (analytics/facts.py).
_FROM_EVENTS = {"sent": ("processed",), "delivered": ("delivered",), "deferred": ("deferred",),
                "bounced": ("bounce",), "dropped": ("dropped",), "opens": ("open",), "clicks": ("click",),
                "unsubscribes": ("unsubscribe", "group_unsubscribe"), "spam_reports": ("spamreport",)}
_ROLLUP_SUMS = {"bounced": ("bounced_hard", "bounced_soft"), "opens": ("opens_human", "opens_machine"),
                "clicks": ("clicks_human", "clicks_scanner")}


def run_days() -> DayRange | None:
    """The UTC days the run's events fall on (with a day either side), None before any event."""
    span = MessageEvent.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    if span["first"] is None:
        return None
    return DayRange(span["first"].date() - dt.timedelta(days=1), span["last"].date() + dt.timedelta(days=1))


def _simulator_counts(sim_url: str) -> Counter[str]:
    originals = {(e["event"].get("email"), e["event"].get("event"), e["event"].get("timestamp"), e["event"].get("url"))
                 for e in sim_get(sim_url, "/_sim/events", timeout=120).get("events", [])
                 if e.get("copy") == "original" and e.get("delivery_status") == "delivered"}
    by_type = Counter(key[1] for key in originals)
    # Bounce notices that came back by mail (Inbound Parse) are stored as bounce events too.
    by_type["bounce"] += MessageEvent.objects.filter(event_type="bounce",
                                                     webhook_delivery__kind=WebhookDelivery.Kind.SENDGRID_INBOUND).count()
    return Counter({name: sum(by_type[t] for t in types) for name, types in _FROM_EVENTS.items()})


def _rollup_counts(days: DayRange) -> Counter[str]:
    columns = {name: _ROLLUP_SUMS.get(name, (name,)) for name in _FROM_EVENTS}
    sums = TenantDaily.objects.filter(day__gte=days.first, day__lte=days.last).aggregate(
        **{c: Sum(c) for cs in columns.values() for c in cs})
    return Counter({name: sum(sums[c] or 0 for c in cs) for name, cs in columns.items()})


def rollup_failures(*, sim_url: str | None) -> tuple[list[str], dict[str, int]]:
    """(failures, what was checked): analytics_verify over the run's days, and each count against the simulator."""
    days = run_days()
    if days is None:
        return [], {}
    failures = [f"rollups: {d.table} {d.key} {d.metric} is {d.rollup}, raw events say {d.recount}"
                for d in rollups_verify(days=days)[:20]]
    counts = _rollup_counts(days)
    if sim_url:
        for name, expected in _simulator_counts(sim_url).items():
            if counts[name] != expected:
                failures.append(f"rollups: {name} is {counts[name]}, the simulator posted {expected}")
    return failures, {"rollup counts against raw events and the simulator": sum(counts.values())}


def campaign_metrics_lines(*, web_url: str, api_key: str, campaign_id: int) -> list[str]:
    """The campaign's totals and rates as GET /api/v1/metrics/campaigns/{id} serves them, a line each."""
    days = run_days()
    if days is None:
        return ["no events: no metrics"]
    url = f"{web_url}/api/v1/metrics/campaigns/{campaign_id}?from={days.first}&to={days.last}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=60) as response:
            body: dict[str, Any] = json.loads(response.read())
    except (OSError, ValueError, urllib.error.HTTPError) as exc:
        return [f"WARNING: GET {url} failed: {exc}"]
    totals = body["totals"]
    counts = ("sent", "delivered", "bounced", "unique_human_opens", "opens_machine", "unique_clickers",
              "clicks_scanner", "replies", "unsubscribes", "spam_reports")
    rates = ("human_open_rate", "click_rate", "reply_rate", "positive_reply_rate", "bounce_rate",
             "spam_complaint_rate", "unsubscribe_rate")
    return [", ".join(f"{name} {totals[name]}" for name in counts),
            ", ".join(f"{name} {'-' if totals[name] is None else f'{totals[name]:.1%}'}" for name in rates),
            *(f"step {row['node_id']}: sent {row['sent']}, delivered {row['delivered']}, "
              f"unique opens {row['unique_human_opens']}, replies {row['replies']}" for row in body["by_step"])]
