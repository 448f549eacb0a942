"""What must hold after a run, checked against the database and the simulator's own records.

`check_invariants()` returns an `InvariantReport`: one line per failure naming the rows involved, and how
many items each check looked at. `make demo` prints it; the end-to-end test asserts it is empty, and also
runs `check_scripted_recipients()`: what each scripted recipient of demo/contacts.csv (reply@, stop@,
unsub@, bounce@, spam@, ooo@, machine@) must have led to.

Imports the apps' models: import it after django.setup() (demo/run_demo.py does; pytest-django does for
the tests).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count

from campaigns.fallback_planner import SEQUENCE as QUIET_SEQUENCE
from campaigns.interface import ContactCampaign, send_time_allowed
from demo.processes import sim_get
from demo.progress import FINAL_STATUSES
from messaging.interface import InboundMessage, MessageEvent, OutboundMessage
from messaging.models import CommunicationSuppression, ContactUnsubscribe, WebhookDelivery


@dataclass
class InvariantReport:
    failures: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # name -> how many items the check looked at
    section: str = ""  # the invariant being checked: failures are counted under it
    failed_sections: Counter[str] = field(default_factory=Counter)
    sections: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        self.failed_sections[self.section] += 1

    def begin(self, section: str) -> None:
        """Count the failures that follow under `section` (the chaos table prints one result per section)."""
        self.section = section
        if section not in self.sections:
            self.sections.append(section)


# The invariants check_invariants() proves, by section.
NO_DOUBLE_SEND = "no double send"
SENT_AT_PROVIDER = "sent = what the provider got"
EVENTS_ONCE = "no event lost or doubled"
OPT_OUTS = "nothing after an opt-out"
REPLIES = "replies end enrolments"
FINAL = "every enrolment final"
UNKNOWN_SETTLED = "no unknown row settled by events"
SEND_WINDOW = "nothing inside quiet hours or off send days"


def _as_epoch_key(value: dt.datetime) -> int:
    return int(value.timestamp())


def check_invariants(*, anchor: Any, sim_url: str | None, grace_real_seconds: float = 2.0,
                     tenant_id: int | None = None) -> InvariantReport:
    """Everything that must hold after a run; each failure is one line naming the rows involved.

    `anchor` (demo.seeding.ClockAnchor) puts the wall-clock time Django's auto_now_add columns hold (e.g.
    ContactUnsubscribe.created_at) on the virtual clock the business columns use. A send claimed within
    `grace_real_seconds` after an opt-out was written is a race the system cannot see (the policy check ran
    first) and is not counted.
    """
    report = InvariantReport()
    report.begin(NO_DOUBLE_SEND)
    _check_no_double_sends(report)
    if sim_url:
        _check_simulator_messages(report, sim_url)
        report.begin(EVENTS_ONCE)
        _check_webhook_events_stored_once(report, sim_url)
    report.begin(OPT_OUTS)
    _check_opt_outs_honoured(report, anchor=anchor, grace=dt.timedelta(seconds=grace_real_seconds * anchor.speed))
    report.begin(REPLIES)
    _check_replies_stop(report, grace=dt.timedelta(seconds=grace_real_seconds * anchor.speed))
    report.begin(SEND_WINDOW)
    _check_sends_inside_the_window(report, grace=dt.timedelta(seconds=grace_real_seconds * anchor.speed))
    report.begin(FINAL)
    _check_final_states(report, tenant_id=tenant_id)
    report.begin(UNKNOWN_SETTLED)
    _check_no_unknown_with_events(report)
    return report


def _check_sends_inside_the_window(report: InvariantReport, *, grace: dt.timedelta) -> None:
    """No mail went out inside its contact's quiet hours or off the plan's send days (virtual clock).

    The moment is the request start (`send_started_at`, else `sent_at`); a send whose batch passed the
    window check `grace` before the window closed is a race of the last batch, not counted.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT om.id, om.to_address, COALESCE(om.send_started_at, om.sent_at), cc.plan_json "
            "FROM outbound_messages om JOIN contact_campaigns cc ON cc.id = om.contact_campaign_id "
            "WHERE om.status IN ('sent', 'unknown') AND COALESCE(om.send_started_at, om.sent_at) IS NOT NULL"
        )
        rows = cursor.fetchall()
    report.checked["sends inside the send window"] = len(rows)
    for message_id, address, started, plan in rows:
        plan = _plan_dict(plan)
        if send_time_allowed(plan=plan, instant=started) or send_time_allowed(plan=plan, instant=started - grace):
            continue
        zone = (plan or {}).get("timezone", "UTC")
        report.fail(f"sent inside quiet hours / off the send days: message {message_id} to {address} at "
                    f"{started.isoformat()} ({zone}: quiet {(plan or {}).get('quietHours')}, "
                    f"days {(plan or {}).get('sendDays')})")


def _plan_dict(value: Any) -> dict[str, Any] | None:
    """A jsonb column read through a raw cursor: psycopg gives a dict already, an old driver a string."""
    if value is None or isinstance(value, dict):
        return value
    return json.loads(value)


# Provider events that prove SendGrid accepted a mail: a row they name cannot still be `unknown`.
ACCEPTANCE_EVENTS = ("processed", "delivered", "deferred", "bounce", "dropped", "open", "click")


def _check_no_unknown_with_events(report: InvariantReport) -> None:
    """An ambiguous send (timeout, lost answer) is `unknown` until the provider's events tell; once stored
    events name the message it must have moved on (sent), not stay `unknown` for ever."""
    stuck = (OutboundMessage.objects.filter(status=OutboundMessage.Status.UNKNOWN,
                                            events__event_type__in=ACCEPTANCE_EVENTS)
             .distinct().order_by("id").values_list("id", "to_address"))
    report.checked["unknown messages"] = OutboundMessage.objects.filter(status=OutboundMessage.Status.UNKNOWN).count()
    for message_id, address in stuck[:20]:
        report.fail(f"message {message_id} to {address} is still unknown although provider events for it are stored")


def _check_no_double_sends(report: InvariantReport) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT dedupe_key, count(*) FROM outbound_messages GROUP BY 1 HAVING count(*) > 1")
        for key, n in cursor.fetchall():
            report.fail(f"double send: {n} outbound messages share dedupe key {key}")
        cursor.execute(
            "SELECT contact_campaign_id, node_id, node_visit, array_agg(id ORDER BY id) FROM outbound_messages "
            "WHERE contact_campaign_id IS NOT NULL AND (sent_at IS NOT NULL OR provider_message_id IS NOT NULL "
            "OR status IN ('sent', 'sending', 'unknown')) GROUP BY 1, 2, 3 HAVING count(*) > 1"
        )
        for cc_id, node_id, visit, ids in cursor.fetchall():
            report.fail(f"double send: contact campaign {cc_id} node {node_id} visit {visit} sent by messages {ids}")
        cursor.execute("SELECT count(*) FROM outbound_messages")
        report.checked["outbound messages"] = cursor.fetchone()[0]


def _check_simulator_messages(report: InvariantReport, sim_url: str) -> None:
    mails = sim_get(sim_url, "/_sim/messages", timeout=120).get("messages", [])
    report.checked["mails at the simulator"] = len(mails)
    by_id: Counter[str] = Counter()
    for mail in mails:
        outbound_id = (mail.get("custom_args") or {}).get("outbound_message_id")
        if not outbound_id:
            report.fail(f"simulator mail {mail.get('x_message_id')} to {mail.get('to')} has no outbound_message_id")
            continue
        by_id[outbound_id] += 1
    for outbound_id, n in sorted(by_id.items()):
        if n > 1:
            report.fail(f"double send: outbound message {outbound_id} reached the simulator {n} times")
    report.begin(SENT_AT_PROVIDER)
    accepted = set(by_id)
    ours = {str(i) for i in OutboundMessage.objects.filter(provider_message_id__isnull=False)
            .values_list("id", flat=True)}
    ours |= {str(i) for i in OutboundMessage.objects.filter(status__in=["sent", "unknown"])
             .values_list("id", flat=True)}
    for missing in sorted(ours - accepted, key=int)[:20]:
        report.fail(f"outbound message {missing} is marked sent but the simulator never received it")
    for unknown in sorted(accepted - ours, key=int)[:20]:
        report.fail(f"the simulator received outbound message {unknown}, which is not marked sent")


def _sim_event_key(event: dict[str, Any]) -> tuple[str, str, int, str]:
    return (str(event.get("email", "")).strip().lower(), str(event.get("event", "")), int(event["timestamp"]),
            str(event.get("url") or ""))


def webhook_event_differences(*, posted: list[dict[str, Any]], stored: Iterable[tuple[str, str, int, str]],
                              report: InvariantReport) -> None:
    """Compare the simulator's event log (`/_sim/events` rows) with the stored events' content keys
    (email, event, epoch second, url): each original the web server accepted must be stored exactly once;
    the simulator's copies (same event again, or again with a new sg_event_id) must add nothing."""
    expected: Counter[tuple] = Counter()
    not_posted: Counter[str] = Counter()
    copies = 0
    for row in posted:
        if row.get("copy") != "original":
            copies += 1
            continue
        if row.get("delivery_status") != "delivered":
            not_posted[f"{row.get('delivery_status')} (HTTP {row.get('status_code')})"] += 1
            continue
        expected[_sim_event_key(row["event"])] += 1
    for state, n in not_posted.items():
        report.fail(f"webhook: {n} events never accepted by the web server: {state}")
    stored_keys: Counter[tuple] = Counter(stored)
    report.checked["webhook events posted (originals)"] = sum(expected.values())
    report.checked["webhook event copies posted (duplicates)"] = copies
    report.checked["message events stored"] = sum(stored_keys.values())
    for key in list(expected - stored_keys)[:20]:
        report.fail(f"webhook event lost: {key} posted, stored {stored_keys.get(key, 0)} of {expected[key]}")
    for key in list(stored_keys - expected)[:20]:
        report.fail(f"webhook event stored twice: {key} stored {stored_keys[key]} times, "
                    f"posted {expected.get(key, 0)}")


def _check_webhook_events_stored_once(report: InvariantReport, sim_url: str) -> None:
    """Each event the simulator posted successfully is one MessageEvent: none lost, none twice (a resent
    batch, a duplicate event and a duplicate with a new sg_event_id must all be absorbed)."""
    posted = sim_get(sim_url, "/_sim/events", timeout=120).get("events", [])
    stored = [(email.lower(), kind, _as_epoch_key(occurred_at), url or "") for email, kind, occurred_at, url in
              MessageEvent.objects.filter(webhook_delivery__isnull=False).values_list("email", "event_type",
                                                                                       "occurred_at", "url")]
    webhook_event_differences(posted=posted, stored=stored, report=report)
    with connection.cursor() as cursor:
        cursor.execute("SELECT provider, provider_event_id, count(*) FROM message_events WHERE provider_event_id <> '' "
                       "GROUP BY 1, 2 HAVING count(*) > 1")
        for provider, event_id, n in cursor.fetchall():
            report.fail(f"webhook event stored twice: {provider} event id {event_id} is in {n} rows")
        cursor.execute("SELECT dedupe_key, count(*) FROM message_events GROUP BY 1 HAVING count(*) > 1")
        for key, n in cursor.fetchall():
            report.fail(f"webhook event stored twice: content key {key} is in {n} rows")
    for status, n in (WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.PROCESSED).order_by()
                      .values_list("status").annotate(n=Count("id"))):
        report.fail(f"webhook: {n} stored deliveries left {status}")

    inbound = sim_get(sim_url, "/_sim/inbound", timeout=60).get("inbound", [])
    replies = [r for r in inbound if r.get("kind") == "reply"]
    report.checked["replies posted"] = len(replies)
    known = Counter(InboundMessage.objects.values_list("message_id_header", flat=True))
    for reply in replies:
        if reply.get("delivery_status") != "delivered":
            report.fail(f"reply from {reply.get('email')} never accepted: {reply.get('delivery_status')} "
                        f"(HTTP {reply.get('status_code')})")
            continue
        headers = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
        message_id = headers.get("message-id", "")
        if message_id and known.get(message_id, 0) != 1:
            report.fail(f"reply {message_id} from {reply.get('email')} stored {known.get(message_id, 0)} times")


def _claim_time(message: dict[str, Any]) -> dt.datetime | None:
    return message["claimed_at"] or message["send_started_at"] or message["sent_at"]


def _check_opt_outs_honoured(report: InvariantReport, *, anchor: Any, grace: dt.timedelta) -> None:
    """No mail claimed for sending after the address opted out (unsubscribe) or was suppressed."""
    opt_outs: dict[tuple[int, str], list[tuple[dt.datetime, dt.datetime | None, str]]] = defaultdict(list)
    for tenant_id, value, created_at, source in ContactUnsubscribe.objects.filter(channel="email").values_list(
            "tenant_id", "channel_value", "created_at", "source"):
        opt_outs[(tenant_id, value.lower())].append((anchor.as_virtual(created_at), None, f"unsubscribed ({source})"))
    domain_blocks: dict[tuple[int, str], list[tuple[dt.datetime, dt.datetime | None, str]]] = defaultdict(list)
    for tenant_id, channel, value, created_at, expires_at, reason in CommunicationSuppression.objects.filter(
            channel__in=["email", "email_domain"]).values_list("tenant_id", "channel", "value", "created_at",
                                                               "expires_at", "reason"):
        target = domain_blocks if channel == "email_domain" else opt_outs
        target[(tenant_id, value.lower())].append((anchor.as_virtual(created_at), expires_at and anchor.as_virtual(
            expires_at), f"suppressed ({reason})"))
    report.checked["opt-outs and suppressions"] = sum(len(v) for v in opt_outs.values()) + sum(
        len(v) for v in domain_blocks.values())
    sent = OutboundMessage.objects.filter(channel="email").filter(
        status__in=["sent", "sending", "unknown"]).values("id", "tenant_id", "to_address", "claimed_at",
                                                         "send_started_at", "sent_at")
    for message in sent:
        address = message["to_address"].lower()
        claimed = _claim_time(message)
        if claimed is None:
            continue
        blocks = opt_outs.get((message["tenant_id"], address), []) + domain_blocks.get(
            (message["tenant_id"], address.rsplit("@", 1)[-1]), [])
        for since, until, why in blocks:
            if claimed > since + grace and (until is None or claimed < until):
                report.fail(f"sent to an opted-out address: message {message['id']} to {address} claimed "
                            f"{claimed:%Y-%m-%d %H:%M:%S} (virtual), {why} since {since:%Y-%m-%d %H:%M:%S}")


def _check_replies_stop(report: InvariantReport, *, grace: dt.timedelta) -> None:
    """A human reply ends its contact campaign: nothing of that enrolment is sent after it was processed."""
    replies = list(InboundMessage.objects.filter(is_auto_reply=False, outbound_message__contact_campaign__isnull=False)
                   .values("id", "from_email", "processed_at", "received_at",
                           "outbound_message__contact_campaign_id"))
    report.checked["human replies"] = len(replies)
    statuses = dict(ContactCampaign.objects.filter(
        id__in=[r["outbound_message__contact_campaign_id"] for r in replies]).values_list("id", "status"))
    for reply in replies:
        cc_id = reply["outbound_message__contact_campaign_id"]
        if statuses.get(cc_id) not in FINAL_STATUSES:
            report.fail(f"reply {reply['id']} from {reply['from_email']} did not end contact campaign {cc_id} "
                        f"(status {statuses.get(cc_id)})")
        processed = reply["processed_at"]
        if processed is None:
            report.fail(f"reply {reply['id']} from {reply['from_email']} was never processed")
            continue
        later = OutboundMessage.objects.filter(contact_campaign_id=cc_id, claimed_at__gt=processed + grace).filter(
            status__in=["sent", "sending", "unknown"]).values_list("id", "node_id")
        for message_id, node_id in later:
            report.fail(f"sent after a reply: message {message_id} ({node_id}) of contact campaign {cc_id} "
                        f"after reply {reply['id']} from {reply['from_email']}")


def _check_final_states(report: InvariantReport, *, tenant_id: int | None) -> None:
    queryset = ContactCampaign.objects.all()
    if tenant_id is not None:
        queryset = queryset.filter(tenant_id=tenant_id)
    report.checked["contact campaigns"] = queryset.count()
    for cc_id, status, node, email in queryset.exclude(status__in=FINAL_STATUSES).values_list(
            "id", "status", "current_node_id", "contact__email")[:50]:
        report.fail(f"contact campaign {cc_id} ({email}) is {status} at node {node or '-'}, not final")


# --------------------------------------------------------------------------------------------- scripted recipients

# How a human reply may end an enrolment through the plan's reply branch (a stop node with the reply's reason).
REPLY_STOP_REASONS = frozenset({"interested", "not_interested", "replied"})
# Scripted recipients whose opt-out stops the enrolment as a policy stop, with this reason.
_OPT_OUT_STOPS = (("unsub", "unsubscribe"), ("stop", "stop_request"), ("bounce", "hard_bounce"),
                  ("spam", "spamreport"))


def _enrolment(email: str) -> ContactCampaign | None:
    return ContactCampaign.objects.select_related("contact").filter(contact__email=email).first()


def _sent_count(email: str) -> int:
    return OutboundMessage.objects.filter(to_address=email, sent_at__isnull=False).count()


def check_scripted_recipients(scripted: dict[str, str]) -> InvariantReport:
    """What each scripted recipient must have led to; `scripted` maps a behaviour (reply, stop, unsub, bounce,
    spam, ooo, machine: the simulator's scripted addresses) to the contact's email."""
    report = InvariantReport()
    _check_replies_end_enrolments(report, scripted)
    _check_opt_outs_recorded(report, scripted)
    _check_auto_replies_and_machine_opens(report, scripted)
    if ContactCampaign.objects.exclude(status__in=FINAL_STATUSES).exists():
        report.fail("some contact campaigns are not in a final state")
    if OutboundMessage.objects.filter(status__in=["queued", "sending"]).exists():
        report.fail("outbound messages are still queued or sending")
    report.checked["scripted recipients"] = len(scripted)
    return report


def _check_replies_end_enrolments(report: InvariantReport, scripted: dict[str, str]) -> None:
    """Every human reply ends its enrolment: the plan's reply branch leads to a stop node (completed, with the
    reply's reason); a reply asking to stop is a policy stop (stopped, stop_request) and an opt-out too."""
    replies = list(InboundMessage.objects.filter(is_auto_reply=False).select_related("outbound_message"))
    repliers = {r.from_email.lower() for r in replies}
    for behaviour in ("reply", "stop"):
        if scripted[behaviour] not in repliers:
            report.fail(f"the scripted {behaviour}@ recipient {scripted[behaviour]} never replied")
    for reply in replies:
        cc = ContactCampaign.objects.get(pk=reply.outbound_message.contact_campaign_id)
        outcome = (reply.from_email, cc.status, cc.stop_reason)
        if reply.stop_request:
            if (cc.status, cc.stop_reason) != (ContactCampaign.Status.STOPPED, "stop_request"):
                report.fail(f"a reply asking to stop did not stop its enrolment as a stop request: {outcome}")
            if not ContactUnsubscribe.objects.filter(channel_value=reply.from_email.lower()).exists():
                report.fail(f"a reply asking to stop recorded no unsubscribe: {reply.from_email}")
        elif cc.status not in FINAL_STATUSES or cc.stop_reason not in REPLY_STOP_REASONS:
            report.fail(f"a human reply did not end its enrolment through the reply branch: {outcome}")
    replied = _enrolment(scripted["reply"])
    if replied is None or replied.stop_reason not in REPLY_STOP_REASONS:
        report.fail(f"the reply@ enrolment did not stop for its reply: {replied and replied.stop_reason}")
    if not InboundMessage.objects.filter(from_email__iexact=scripted["stop"], stop_request=True).exists():
        report.fail("the stop@ reply was not read as a request to stop")


def _check_opt_outs_recorded(report: InvariantReport, scripted: dict[str, str]) -> None:
    """Opt-outs are recorded and end the enrolment (check_invariants proves nothing went out after them)."""
    for behaviour in ("unsub", "stop"):
        if not ContactUnsubscribe.objects.filter(channel_value=scripted[behaviour]).exists():
            report.fail(f"no unsubscribe recorded for the {behaviour}@ recipient {scripted[behaviour]}")
    for behaviour, reason in (("bounce", "hard_bounce"), ("spam", "spam_report")):
        if not CommunicationSuppression.objects.filter(value=scripted[behaviour], reason=reason).exists():
            report.fail(f"no {reason} suppression for the {behaviour}@ recipient {scripted[behaviour]}")
    for behaviour, reason in _OPT_OUT_STOPS:
        cc = _enrolment(scripted[behaviour])
        outcome = (cc.status, cc.stop_reason) if cc else None
        if outcome != (ContactCampaign.Status.STOPPED, reason):
            report.fail(f"the {behaviour}@ enrolment is {outcome}, not stopped for {reason}")


def _check_auto_replies_and_machine_opens(report: InvariantReport, scripted: dict[str, str]) -> None:
    """An out-of-office answer is not a reply: the enrolment goes on after the return date and completes.
    Machine opens are not engagement: the whole sequence goes out and nothing counts as a human open."""
    ooo, machine = scripted["ooo"], scripted["machine"]
    if not InboundMessage.objects.filter(from_email__iexact=ooo, is_auto_reply=True).exists():
        report.fail(f"no out-of-office auto-reply stored from {ooo}")
    ooo_cc = _enrolment(ooo)
    if ooo_cc is None or ooo_cc.status != ContactCampaign.Status.COMPLETED:
        report.fail(f"the ooo@ enrolment did not complete: {ooo_cc and (ooo_cc.status, ooo_cc.stop_reason)}")
    if _sent_count(ooo) < 2:
        report.fail(f"the ooo@ recipient got {_sent_count(ooo)} mails, not the follow-ups after the return date")
    machine_cc = _enrolment(machine)
    if machine_cc is None or machine_cc.status != ContactCampaign.Status.COMPLETED:
        report.fail(f"the machine@ enrolment did not complete: {machine_cc and machine_cc.status}")
    whole = len(QUIET_SEQUENCE)  # the built-in planner's touches for a contact who never answers
    if _sent_count(machine) != whole:
        report.fail(f"the machine@ recipient got {_sent_count(machine)} mails, not the whole sequence of {whole}")
    if MessageEvent.objects.filter(email=machine, event_type="open", is_machine=False).exists():
        report.fail("a machine open of the machine@ recipient counted as a human open")
