"""The recipients: a seeded engagement model that turns one accepted mail into a timeline.

A timeline is a list of ``Planned`` items at virtual offsets from the send. Each
item is an event webhook payload (built later, when it is emitted), an Inbound
Parse reply, or a one-click unsubscribe POST. Every random choice comes from
one ``random.Random`` per (seed, address, n-th mail to it), so a run is
reproducible whatever order threads accept mails in.
"""
from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

from simulators.sendgrid.config import Rates, SimulatorConfig

SCANNER_AGENTS = (
    "Mozilla/5.0 (compatible; Proofpoint URL Defense/1.0)",
    "Mimecast URL Protect (link scanner)",
    "Mozilla/5.0 (compatible; Barracuda Sentinel link protection)",
    "Microsoft SafeLinks URL Detonation (Mozilla/5.0; Windows NT 10.0)",
)
SCANNER_IPS = ("40.94.29.17", "52.100.14.201", "205.139.110.61", "64.235.150.252")
HUMAN_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
)
MACHINE_OPEN_AGENT = "Mozilla/5.0"
MACHINE_OPEN_IPS = ("17.58.63.12", "17.57.144.87", "17.58.101.5")

_HREF_RE = re.compile(r"""href\s*=\s*["'](https?://[^"'\s>]+)["']""", re.IGNORECASE)
_TEXT_URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclasses.dataclass
class Recipient:
    """One recipient (to, cc or bcc) of one accepted mail: what the events and replies need."""

    email: str
    name: str | None
    x_message_id: str
    sg_message_id: str
    smtp_id: str
    message_id_header: str  # the outbound Message-ID (the sender's, else SendGrid's)
    references: str | None  # the outbound References header, extended by replies
    subject: str
    from_email: str
    from_name: str | None
    reply_to: str
    text: str
    html: str
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: list[str]
    asm_group_id: int | None
    links: list[tuple[str, str, int]]  # (url, "html"|"text", index)
    open_tracking: bool
    click_tracking: bool
    sent_at: float  # virtual epoch seconds
    ip: str
    serial: int = 0  # how many mails this address had received before this one (seeds its random choices)


@dataclasses.dataclass
class Planned:
    """One thing a recipient's mailbox will do. ``offset`` drives the event timestamp, ``emit_offset`` when it goes."""

    kind: str  # "event" | "inbound" | "oneclick"
    offset: float
    name: str  # event type, or reply type for inbound ("positive", "neutral", "negative", "stop", "ooo")
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    emit_offset: float | None = None
    strip_ids: bool = False  # asynchronous bounce: no sg_message_id, smtp-id, category or custom args
    copies: list[tuple[float, bool]] = dataclasses.field(default_factory=list)  # (delay, changed id?)

    @property
    def due_offset(self) -> float:
        return self.offset if self.emit_offset is None else self.emit_offset


def extract_links(html: str, text: str) -> list[tuple[str, str, int]]:
    links: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for i, url in enumerate(_HREF_RE.findall(html or "")):
        if url not in seen:
            seen.add(url)
            links.append((url, "html", i))
    if not links:
        for i, url in enumerate(_TEXT_URL_RE.findall(text or "")):
            if url not in seen:
                seen.add(url)
                links.append((url, "text", i))
    return links


def _human_link(links: list[tuple[str, str, int]]) -> tuple[str, str, int] | None:
    """People click the content, not the unsubscribe footer, when there is content to click."""
    for link in links:
        if "unsubscribe" not in link[0].lower():
            return link
    return links[0] if links else None


def _between(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high)


def plan_recipient(
    *, rcpt: Recipient, behaviour: str | None, config: SimulatorConfig, rng: random.Random,
    suppressed_reason: str | None,
) -> list[Planned]:
    """The timeline for one recipient. ``behaviour`` forces an outcome (overrides); else the rates decide."""
    items: list[Planned] = []
    if suppressed_reason is not None:
        dropped = {"reason": suppressed_reason, "status": "5.0.0"}
        items.append(Planned("event", _between(rng, 0.5, 2), "dropped", dropped))
        return _finish(items, config, rng)
    if behaviour is None:
        behaviour = _random_behaviour(rcpt, config.rates, rng)
    if behaviour == "drop":
        items.append(Planned("event", _between(rng, 0.5, 2), "dropped", {"reason": "Invalid", "status": "5.0.0"}))
        return _finish(items, config, rng)

    items.append(Planned("event", _between(rng, 0.2, 1.0), "processed", {}))
    if behaviour == "bounce":
        asynchronous = rng.random() < config.async_bounce_rate
        if asynchronous:
            delivered_at = _between(rng, 2, 10)
            items.append(_delivered(rcpt, delivered_at))
            items.append(_hard_bounce(_between(rng, 1800, 7200), strip_ids=True))
        else:
            items.append(_hard_bounce(_between(rng, 2, 10), strip_ids=False))
        return _finish(items, config, rng)
    if behaviour == "block":
        items.append(
            Planned(
                "event",
                _between(rng, 2, 10),
                "bounce",
                {
                    "type": "blocked",
                    "status": "4.7.0",
                    "reason": "421 4.7.0 [TSS04] Messages from " + rcpt.ip + " temporarily deferred due to "
                    "unexpected volume or user complaints",
                    "bounce_classification": "Reputation",
                },
            )
        )
        return _finish(items, config, rng)

    delivered_at = _between(rng, 2, 10)
    if behaviour == "defer":
        items.append(
            Planned(
                "event",
                delivered_at,
                "deferred",
                {"response": "451 4.7.650 The mail server has been temporarily rate limited.", "attempt": "1"},
            )
        )
        delivered_at += _between(rng, 300, 1800)
    items.append(_delivered(rcpt, delivered_at))
    items.extend(_engagement(rcpt, behaviour, delivered_at, config, rng))
    return _finish(items, config, rng)


def _random_behaviour(rcpt: Recipient, rates: Rates, rng: random.Random) -> str:
    domain = rcpt.email.rsplit("@", 1)[-1].lower()
    if domain.endswith(".invalid"):
        return "bounce"  # no MX: the receiving side refuses at once
    roll = rng.random()
    if roll < rates.hard_bounce:
        return "bounce"
    roll -= rates.hard_bounce
    if roll < rates.soft_bounce:
        return "block"
    roll -= rates.soft_bounce
    if roll < rates.dropped:
        return "drop"
    return "defer" if rng.random() < rates.deferred else "random"


def _delivered(rcpt: Recipient, at: float) -> Planned:
    return Planned("event", at, "delivered", {"response": "250 2.0.0 OK", "ip": rcpt.ip, "tls": 1})


def _hard_bounce(at: float, *, strip_ids: bool) -> Planned:
    return Planned(
        "event",
        at,
        "bounce",
        {
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist. Please try "
            "double-checking the recipient's email address for typos or unnecessary spaces.",
            "bounce_classification": "Invalid Address",
        },
        strip_ids=strip_ids,
    )


def _open(rcpt: Recipient, at: float, rng: random.Random, *, machine: bool) -> Planned:
    if machine:
        fields = {"ip": rng.choice(MACHINE_OPEN_IPS), "useragent": MACHINE_OPEN_AGENT, "sg_machine_open": True}
    else:
        fields = {
            "ip": f"198.51.100.{rng.randint(2, 250)}",
            "useragent": rng.choice(HUMAN_AGENTS),
            "sg_machine_open": False,
        }
    return Planned("event", at, "open", fields)


def _click(at: float, link: tuple[str, str, int], *, useragent: str, ip: str) -> Planned:
    url, kind, index = link
    fields = {"url": url, "url_offset": {"index": index, "type": kind}, "ip": ip, "useragent": useragent}
    return Planned("event", at, "click", fields)


def _engagement(
    rcpt: Recipient, behaviour: str, delivered_at: float, config: SimulatorConfig, rng: random.Random
) -> list[Planned]:
    """What happens after delivery, for one behaviour (or the random model when behaviour == 'random')."""
    out: list[Planned] = []
    want: set[str] = set()
    reply_type: str | None = None
    if behaviour == "random":
        r = config.rates
        if rng.random() < r.machine_open:
            want.add("machine_open")
        if rng.random() < r.human_open:
            want.add("human_open")
            if rng.random() < r.click:
                want.add("click")
        if rng.random() < r.scanner_click:
            want.add("scanner")
        roll = rng.random()
        if roll < r.reply:
            share = rng.random()
            if share < r.reply_positive_share:
                reply_type = "positive"
            elif share < r.reply_positive_share + r.reply_negative_share:
                reply_type = "negative"
            else:
                reply_type = "neutral"
            want.add("human_open")
        elif roll < r.reply + r.ooo:
            reply_type = "ooo"
        elif roll < r.reply + r.ooo + r.stop:
            reply_type = "stop"
            want.add("human_open")
        if rng.random() < r.unsubscribe:
            want.update({"unsubscribe", "human_open"})
        if rng.random() < r.spam_report:
            want.add("spamreport")
    else:
        want = {
            "open": {"human_open"},
            "machine": {"machine_open"},
            "click": {"human_open", "click"},
            "scanner": {"scanner"},
            "reply": {"human_open"},
            "stop": {"human_open"},
            "unsub": {"human_open", "unsubscribe"},
            "oneclick": {"oneclick"},
            "spam": {"spamreport"},
        }.get(behaviour, set())
        reply_type = {"reply": "positive", "stop": "stop", "ooo": "ooo"}.get(behaviour)

    if "scanner" in want and rcpt.click_tracking:
        # Gateways fetch every link (the unsubscribe footer too) seconds after delivery, from one agent.
        agent, ip = rng.choice(SCANNER_AGENTS), rng.choice(SCANNER_IPS)
        for link in rcpt.links:
            out.append(_click(delivered_at + _between(rng, 0.5, 6), link, useragent=agent, ip=ip))
    if "machine_open" in want and rcpt.open_tracking:
        out.append(_open(rcpt, delivered_at + _between(rng, 5, 900), rng, machine=True))
    opened_at = delivered_at + _between(rng, 300, 6 * 3600)
    if "human_open" in want and rcpt.open_tracking:
        out.append(_open(rcpt, opened_at, rng, machine=False))
    link = _human_link(rcpt.links)
    if "click" in want and rcpt.click_tracking and link is not None:
        human = rng.choice(HUMAN_AGENTS)
        ip = f"198.51.100.{rng.randint(2, 250)}"
        out.append(_click(opened_at + _between(rng, 10, 600), link, useragent=human, ip=ip))
    if reply_type == "ooo":
        out.append(Planned("inbound", delivered_at + _between(rng, 20, 300), "ooo"))
    elif reply_type is not None:
        out.append(Planned("inbound", opened_at + _between(rng, 600, 8 * 3600), reply_type))
    if "unsubscribe" in want:
        fields: dict[str, Any] = {}
        name = "unsubscribe"
        if rcpt.asm_group_id is not None:
            name, fields = "group_unsubscribe", {"asm_group_id": rcpt.asm_group_id}
        fields.update({"ip": f"198.51.100.{rng.randint(2, 250)}", "useragent": rng.choice(HUMAN_AGENTS)})
        out.append(Planned("event", opened_at + _between(rng, 30, 600), name, fields))
    if "oneclick" in want:
        out.append(Planned("oneclick", delivered_at + _between(rng, 60, 3600), "oneclick"))
    if "spamreport" in want:
        out.append(Planned("event", delivered_at + _between(rng, 60, 24 * 3600), "spamreport", {}))
    return out


def _finish(items: list[Planned], config: SimulatorConfig, rng: random.Random) -> list[Planned]:
    """Apply the awkward parts: late delivered (out of order) and duplicates, all decided now from the rng."""
    events = [p for p in items if p.kind == "event"]
    delivered = next((p for p in events if p.name == "delivered"), None)
    engaged = sorted((p for p in events if p.name in ("open", "click")), key=lambda p: p.offset)
    if delivered is not None and engaged and rng.random() < config.out_of_order_rate:
        delivered.emit_offset = engaged[0].offset + 1.0
    for p in events:
        if rng.random() < config.duplicate_rate:
            for _ in range(rng.randint(1, max(1, config.duplicate_max_copies))):
                p.copies.append((_between(rng, 30, 3600), False))
        if rng.random() < config.changed_id_duplicate_rate:
            p.copies.append((_between(rng, 30, 3600), True))
    return sorted(items, key=lambda p: p.due_offset)
