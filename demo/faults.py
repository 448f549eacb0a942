"""The faults the chaos run injects into the running system, each one function of a `FaultContext`.

- processes: `kill` (SIGKILL to the process group; the supervisor starts it again);
- services: `redis_restart` (the run's own redis-server killed and started empty, the clock anchor written
  back), `postgres_restart` (the run's own cluster stopped in immediate mode and started);
- provider: `provider_fault` (the simulator's /_sim/faults switch: 5xx, 429, slow, drop), `provider_outage`
  (5xx on every request for a while); `sends_in_flight` tells when mails are on their way;
- webhooks: `replay_webhooks` (every event SendGrid posted so far, re-signed and posted again in a new
  random order, three times);
- opt-outs: `opt_out_in_flight` (the RFC 8058 one-click POST of recipients whose next mail is being sent
  right now; the time the web server acknowledged it is kept for the check that nothing went out after it).

Imports the apps' models (for the opt-out race): import it after django.setup().
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import re
import time
import urllib.parse
import urllib.request
from typing import Any

from django.db.models import Q

from campaigns.models import ScheduledAction
from demo.chaos_services import OwnPostgres, OwnRedis
from demo.processes import DemoConfig, ProcessGroup, run_python_module, sim_get, sim_post
from demo.scenario import ClockAnchor
from demo.supervisor import Supervisor
from messaging.interface import OutboundMessage
from simulators.sendgrid.poster import SIGNATURE_HEADER, TIMESTAMP_HEADER
from simulators.sendgrid.signing import load_private_key, sign_event_payload

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
REPLAY_BATCH_EVENTS = 50


@dataclasses.dataclass
class OptOutAck:
    address: str
    acknowledged_at: dt.datetime  # virtual time at which the web server answered 200


@dataclasses.dataclass
class FaultContext:
    config: DemoConfig
    group: ProcessGroup
    supervisor: Supervisor
    anchor: ClockAnchor
    postgres: OwnPostgres | None = None
    redis: OwnRedis | None = None
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(12))
    opt_outs: list[OptOutAck] = dataclasses.field(default_factory=list)
    replayed_events: int = 0


# --------------------------------------------------------------------------------------------- processes


def kill(ctx: FaultContext, *names: str) -> str:
    for name in names:
        ctx.group.kill(name)
    return f"kill -9 {', '.join(names)}"


# --------------------------------------------------------------------------------------------- services


def redis_restart(ctx: FaultContext, *, down_seconds: float = 2.0) -> str:
    """Kill the run's Redis, start it empty, write the clock anchor back before any process may restart."""
    if ctx.redis is None:
        raise RuntimeError("redis_restart needs the run's own Redis (OwnRedis)")
    with ctx.supervisor.paused():
        ctx.redis.kill()
        time.sleep(down_seconds)
        ctx.redis.start()
        # Production runs on the wall clock and keeps nothing in Redis that a restart may lose; the demo's
        # virtual clock lives there, so the harness puts the same anchor back (what a fresh process reads).
        run_python_module(ctx.config, ["demo.steps", "anchor-clock", "--virtual-start", repr(ctx.anchor.virtual_start),
                                       "--real-start", repr(ctx.anchor.real_start)])
    return f"redis kill -9, {down_seconds:g}s down, restarted empty"


def postgres_restart(ctx: FaultContext, *, down_seconds: float = 3.0) -> str:
    if ctx.postgres is None:
        raise RuntimeError("postgres_restart needs the run's own PostgreSQL cluster (OwnPostgres)")
    ctx.postgres.crash_and_restart(down_seconds=down_seconds)
    return f"postgres stop -m immediate, {down_seconds:g}s down, started"


# --------------------------------------------------------------------------------------------- provider


def provider_fault(ctx: FaultContext, mode: str, *, count: int | None = 1, delay_seconds: float | None = None,
                   status: int | None = None) -> str:
    """Switch the simulator's /v3 fault (mode 'none' switches it off)."""
    body: dict[str, Any] = {"mode": mode, "count": count}
    if delay_seconds is not None:
        body["delay_seconds"] = delay_seconds
    if status is not None:
        body["status"] = status
    sim_post(ctx.config.sim_url, "/_sim/faults", body)
    return f"provider {mode}" + (f" x{count}" if count else (" until switched off" if mode != "none" else ""))


def provider_outage(ctx: FaultContext, *, seconds: float) -> str:
    """Every /v3 request answered 5xx for `seconds` of real time, then the provider is back."""
    provider_fault(ctx, "5xx", count=None)
    try:
        time.sleep(seconds)
    finally:
        provider_fault(ctx, "none")
    return f"provider outage: every request 5xx for {seconds:g} s"


def sends_in_flight(ctx: FaultContext) -> bool:
    """A mail is queued or sending, or a send is due within a virtual hour: a fault now meets real traffic
    (the plans send on weekdays only, so a fault timed in real seconds may fall on a quiet weekend)."""
    return bool(_addresses_being_sent(ctx, within=dt.timedelta(hours=1), exclude_opted_out=False))


# --------------------------------------------------------------------------------------------- webhooks


def _post_signed(ctx: FaultContext, events: list[dict[str, Any]]) -> int:
    key = load_private_key(ctx.config.webhook_private_key_file)
    body = json.dumps(events).encode()
    timestamp = str(int(ctx.anchor.virtual_now().timestamp()))
    request = urllib.request.Request(
        f"{ctx.config.web_url}/webhooks/sendgrid/events", data=body, method="POST",
        headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                 SIGNATURE_HEADER: sign_event_payload(key, timestamp, body)})
    with _OPENER.open(request, timeout=30) as response:
        return response.status


def replay_webhooks(ctx: FaultContext, *, times: int = 3) -> str:
    """Every event the simulator has posted and the web server took, again, `times` times, each time in a new
    random order and new batches: a receiver must store none of them twice and lose nothing."""
    rows = sim_get(ctx.config.sim_url, "/_sim/events", timeout=120).get("events", [])
    events = [row["event"] for row in rows if row.get("delivery_status") == "delivered"]
    refused = 0
    for _ in range(times):
        shuffled = events[:]
        ctx.rng.shuffle(shuffled)
        for start in range(0, len(shuffled), REPLAY_BATCH_EVENTS):
            try:
                _post_signed(ctx, shuffled[start:start + REPLAY_BATCH_EVENTS])
            except OSError:
                refused += 1
    ctx.replayed_events += len(events) * times
    return f"replayed {len(events)} events x{times} reshuffled" + (f" ({refused} batches refused)" if refused else "")


# --------------------------------------------------------------------------------------------- opt-outs

_HTTP_LINK = re.compile(r"<(https?://[^>]+)>")


def _unsubscribe_url(ctx: FaultContext, address: str) -> str | None:
    """The List-Unsubscribe http(s) URL of the last mail the address received at the simulator."""
    query = urllib.parse.urlencode({"to": address})
    for mail in reversed(sim_get(ctx.config.sim_url, f"/_sim/messages?{query}").get("messages", [])):
        headers = dict(mail.get("headers") or {})
        for personalization in (mail.get("request") or {}).get("personalizations") or []:
            headers.update(personalization.get("headers") or {})
        match = _HTTP_LINK.search(headers.get("List-Unsubscribe", ""))
        if match:
            return match.group(1)
    return None


def _addresses_being_sent(ctx: FaultContext, *, within: dt.timedelta, exclude_opted_out: bool = True) -> list[str]:
    """Recipients with a mail queued or sending now, or a send due within `within` (virtual)."""
    soon = ctx.anchor.virtual_now() + within
    in_flight = OutboundMessage.objects.filter(status__in=["queued", "sending"]).values_list("to_address", flat=True)
    due = (ScheduledAction.objects.filter(kind="send", status__in=["pending", "claimed"])
           .filter(Q(due_at__lte=soon)).values_list("contact_campaign__contact__email", flat=True))
    done = {ack.address for ack in ctx.opt_outs} if exclude_opted_out else set()
    return sorted({a.lower() for a in [*in_flight, *due]} - done)


def opt_out_in_flight(ctx: FaultContext, *, at_most: int = 2) -> str:
    """One-click unsubscribe (RFC 8058 POST) of recipients whose next mail is on its way right now."""
    candidates = _addresses_being_sent(ctx, within=dt.timedelta(hours=2))
    ctx.rng.shuffle(candidates)
    done = []
    for address in candidates:
        if len(done) >= at_most:
            break
        url = _unsubscribe_url(ctx, address)
        if url is None:
            continue  # no mail yet (its first one is the one in flight): nothing to click
        request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with _OPENER.open(request, timeout=30) as response:
            if response.status != 200:
                continue
        ctx.opt_outs.append(OptOutAck(address=address, acknowledged_at=ctx.anchor.virtual_now()))
        done.append(address)
    return f"one-click opt-out of {len(done)} recipient(s) with a send in flight"
