"""The chaos run's scenarios: what each one breaks, when (real seconds after the seeding), and what it
checks besides the invariants every scenario ends with (demo/invariants.py).

A `Step` injects one fault (demo/faults.py); `recovers=True` marks the moment the fault is over (a process
killed, which the supervisor restarts; a service back; the provider answering again): the table's "time to
recover" is measured from there to the next progress the system makes.

Imports demo/faults.py (the apps' models): import it after django.setup().
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from demo import faults
from demo.faults import FaultContext
from demo.invariants import InvariantReport
from demo.scenario import SHORT_RUN_CLOCK_SPEED
from messaging.interface import OutboundMessage

Fault = Callable[[FaultContext], str]
Check = Callable[[FaultContext, InvariantReport], None]

ACKNOWLEDGED_OPT_OUTS = "nothing after an acknowledged opt-out"
NOTHING_FAILED = "nothing failed for the outage"


@dataclass(frozen=True)
class Step:
    at: float  # real seconds after the seeding
    fault: Fault
    recovers: bool = True
    # Wait (up to WHEN_WAIT_SECONDS past `at`) until this holds, e.g. until mails are on their way.
    when: Callable[[FaultContext], bool] | None = None


WHEN_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    steps: tuple[Step, ...]
    needs: frozenset[str] = frozenset()  # "postgres", "redis": the run's own instances
    checks: tuple[Check, ...] = ()
    settle_timeout: float = 180.0  # real seconds after the last step: past it the scenario fails
    in_short_run: bool = False  # part of the short variant `make test` runs
    sim_config: dict = field(default_factory=dict)  # POST /_sim/config before the seeding
    clock_speed: float = SHORT_RUN_CLOCK_SPEED  # virtual seconds per real second


def every(period: float, *, start: float, stop: float, fault: Fault, recovers: bool = True) -> tuple[Step, ...]:
    steps, at = [], start
    while at <= stop:
        steps.append(Step(at, fault, recovers))
        at += period
    return tuple(steps)


def _f(function: Callable[..., str], *args: object, **kwargs: object) -> Fault:
    """`function(ctx, *args, **kwargs)` once the run has its context."""
    def fault(ctx: FaultContext) -> str:
        return function(ctx, *args, **kwargs)
    return fault


# --------------------------------------------------------------------------------------------- extra checks


def check_acknowledged_opt_outs(ctx: FaultContext, report: InvariantReport) -> None:
    """Nothing started towards an address after the web server acknowledged its opt-out: the request-start
    statement re-checks opt-outs, so a send that began later must have seen it (no grace)."""
    report.begin(ACKNOWLEDGED_OPT_OUTS)
    report.checked["acknowledged opt-outs"] = len(ctx.opt_outs)
    if not ctx.opt_outs:
        report.fail("the opt-out race found no send in flight to race (nothing was checked)")
    for ack in ctx.opt_outs:
        later = (OutboundMessage.objects.filter(to_address__iexact=ack.address, send_started_at__gt=ack.acknowledged_at)
                 .values_list("id", "status", "send_started_at"))
        for message_id, status, started in later:
            report.fail(f"message {message_id} ({status}) to {ack.address} started {started:%H:%M:%S} (virtual), "
                        f"after its opt-out was acknowledged at {ack.acknowledged_at:%H:%M:%S}")


def check_nothing_failed(ctx: FaultContext, report: InvariantReport) -> None:
    """A provider outage shorter than the documented bound pauses sending: no message and no enrolment fails."""
    from campaigns.interface import ContactCampaign

    report.begin(NOTHING_FAILED)
    failed = list(OutboundMessage.objects.filter(status=OutboundMessage.Status.FAILED)
                  .values_list("id", "to_address", "last_error")[:20])
    for message_id, address, error in failed:
        report.fail(f"message {message_id} to {address} failed: {(error or '')[:120]}")
    enrolments = ContactCampaign.objects.filter(status="failed").count()
    if enrolments:
        report.fail(f"{enrolments} enrolments ended failed")


# --------------------------------------------------------------------------------------------- the scenarios

WORKER_KILLS = every(4.0, start=3.0, stop=31.0, fault=_f(faults.kill, "worker"))
PROVIDER_5XX_BURSTS = (Step(2.0, _f(faults.provider_fault, "5xx", count=25)),
                       Step(14.0, _f(faults.provider_fault, "5xx", count=25)))
PROVIDER_429_BURSTS = (Step(5.0, _f(faults.provider_fault, "429", count=30, delay_seconds=2.0)),
                       Step(18.0, _f(faults.provider_fault, "429", count=30, delay_seconds=2.0)))
# The outage runs on a slower clock: 5 real seconds are about 14 virtual hours, under the 24 h a message may
# stay undeliverable before it fails, and long enough in real time for the retry schedule's 5 attempts
# (1-2-4-8 virtual minutes, each a round trip through the dispatcher and the worker) to be spent.
OUTAGE_CLOCK_SPEED = 10_000.0
OUTAGE_REAL_SECONDS = 5.0

DISPATCHER_BEAT_KILLS = every(4.0, start=3.0, stop=31.0, fault=_f(faults.kill, "dispatcher", "beat"))

SCENARIOS: tuple[Scenario, ...] = (
    # What the code survives every time, without the worker kill: a killed worker can die between recording a
    # request's start and sending it, a row `unknown` no event settles; the unknown bound closes it after 73
    # virtual hours (seconds here), so that run ends, but whether a kill lands there is chance (docs/chaos.md).
    Scenario("short: dispatcher + beat kill -9 + provider 5xx/429",
             "dispatcher and beat kill -9 every 4 s while the provider answers bursts of 5xx and 429 (the "
             "`make test` variant)",
             tuple(sorted(DISPATCHER_BEAT_KILLS + PROVIDER_5XX_BURSTS + PROVIDER_429_BURSTS, key=lambda s: s.at)),
             in_short_run=True),
    Scenario("worker kill -9 loop", "the Celery worker killed with -9 every 4 s for 30 s", WORKER_KILLS),
    Scenario("dispatcher + beat kill -9", "dispatcher and beat killed with -9 every 4 s for 30 s",
             DISPATCHER_BEAT_KILLS),
    Scenario("redis kill + restart", "the run's own Redis killed with -9 twice, back empty (no persistence)",
             (Step(5.0, _f(faults.redis_restart)), Step(15.0, _f(faults.redis_restart))),
             needs=frozenset({"redis"})),
    Scenario("postgres restart", "the run's own PostgreSQL stopped in immediate mode twice, 3 s down each",
             (Step(5.0, _f(faults.postgres_restart)), Step(15.0, _f(faults.postgres_restart))),
             needs=frozenset({"postgres"})),
    Scenario("provider 5xx bursts", "two bursts of 25 answers 500/503 from mail/send", PROVIDER_5XX_BURSTS),
    Scenario("provider 429 bursts", "two bursts of 30 answers 429 with X-RateLimit-Reset 2 s ahead",
             PROVIDER_429_BURSTS),
    Scenario("provider slow", "answers 400 +/- 200 ms all along, and 6 answers after 12 s (past the 10 s read "
             "timeout: the mail is accepted, the sender cannot know)",
             (Step(3.0, _f(faults.provider_fault, "slow", count=6, delay_seconds=12.0)),),
             sim_config={"latency_ms": 400, "latency_jitter_ms": 200}),
    Scenario("provider drop", "twice 8 requests accepted, then the connection closed without an answer",
             (Step(3.0, _f(faults.provider_fault, "drop", count=8)),
              Step(15.0, _f(faults.provider_fault, "drop", count=8)))),
    Scenario("provider outage", f"every mail/send answered 5xx for {OUTAGE_REAL_SECONDS:g} s real (about "
             f"{OUTAGE_REAL_SECONDS * OUTAGE_CLOCK_SPEED / 3600:.0f} virtual hours, clock x{OUTAGE_CLOCK_SPEED:,.0f}) "
             "from a moment mails are on their way: sending must pause, nothing fail",
             (Step(3.0, _f(faults.provider_outage, seconds=OUTAGE_REAL_SECONDS), when=faults.sends_in_flight),),
             checks=(check_nothing_failed,), clock_speed=OUTAGE_CLOCK_SPEED, settle_timeout=360.0),
    Scenario("webhook replay x3", "every event posted so far re-posted 3 times, reshuffled, at 10, 20 and 30 s",
             every(10.0, start=10.0, stop=30.0, fault=_f(faults.replay_webhooks, times=3))),
    Scenario("opt-outs racing sends", "one-click opt-outs of recipients whose next mail is on its way, every "
             "second for 25 s", every(1.0, start=2.0, stop=26.0, fault=_f(faults.opt_out_in_flight, at_most=1),
                                      recovers=False),
             checks=(check_acknowledged_opt_outs,)),
)


def short_scenarios() -> tuple[Scenario, ...]:
    return tuple(s for s in SCENARIOS if s.in_short_run)
