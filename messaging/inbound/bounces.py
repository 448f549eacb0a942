"""Bounce notices that arrive as mail (through Inbound Parse): a bounce, never a reply.

- Standard DSNs (RFC 3464: `multipart/report; report-type=delivery-status` with a `message/delivery-status`
  part) are read with Python's email package: recipient, action, status. 5.x.x is hard, 4.x.x soft.
- Mail that looks like a bounce (mailer-daemon/postmaster sender, an "Undeliverable" subject) without a DSN
  part: flufl.bounce (Mailman's detectors) on a copy whose body is capped at 4 KB, then the first status code
  in the notice.
- "This mailbox is no longer in use" / "X has left the company" notices: hard bounces by our own patterns,
  even when they come as auto-replies from the person's own address.
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

_FLUFL_BODY_CAP = 4 * 1024
# flufl.bounce logs every detector it runs at INFO: twenty lines a bounce in the worker's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

_BOUNCER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver(?:able|ed)|delivery status notification|delivery (?:has )?failed|mail delivery failed"
    r"|returned mail|failure notice|delivery (?:failure|delayed|notification)|unzustellbar|nicht zustellbar"
    r"|non remis|non distribuable|no se puede entregar|no entregado|non recapitabile|mancata consegna"
    r"|onbestelbaar|não entregue|undeliverable",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")
_DEAD_MAILBOX = re.compile(
    r"\b(?:mailbox|address|account|e-?mail address|inbox) (?:is |has been )?no longer (?:in use|active|valid|monitored)"
    r"|\bno longer in use\b|\bhas left (?:the company|our company|the organi[sz]ation)\b"
    r"|\bis no longer with (?:the|our)\b|\bnicht mehr (?:genutzt|in gebrauch|aktiv|besetzt)\b"
    r"|\bnicht mehr im unternehmen\b|\bhat (?:das|unser) unternehmen verlassen\b"
    r"|\bn'est plus (?:utilisée?|active|valide)\b|\ba quitté (?:la société|l'entreprise)\b"
    r"|\bya no (?:está|esta) en uso\b|\bya no trabaja\b|\bha dejado la empresa\b"
    r"|\bnon è più (?:attiv|in uso|utilizzat)|\bha lasciato l'azienda\b"
    r"|\bniet meer in gebruik\b|\bniet langer in gebruik\b|\bis niet meer werkzaam\b"
    r"|\bnão está mais em uso\b|\bnão (?:é|está) mais (?:utilizado|ativo)\b|\bdeixou a empresa\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Bounce:
    bounce_type: str  # "hard" or "soft"
    recipient: str  # the address that bounced ("" when the notice does not say)
    status: str  # e.g. "5.1.1" ("" when unknown)
    reason: str  # how it was told: "dsn", "notice", "dead_mailbox"


def _delivery_status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            return part
    return None


def _dsn_fields(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _from_dsn(message: Message) -> Bounce | None:
    part = _delivery_status_part(message)
    if part is None:
        return None
    for group in _dsn_fields(part):
        status = str(group.get("Status", "")).strip()
        action = str(group.get("Action", "")).strip().lower()
        recipient = str(group.get("Final-Recipient", "") or group.get("Original-Recipient", ""))
        if not (status or action):
            continue
        recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
        code = _STATUS.search(status)
        if action == "delivered" or (code and code.group(1) == "2"):
            continue
        hard = code.group(1) == "5" if code else action == "failed"
        return Bounce("hard" if hard else "soft", recipient, code.group(0) if code else "", "dsn")
    return None


def _capped_copy(message: Message) -> Message:
    capped = copy.deepcopy(message)
    for part in capped.walk():
        if not part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, str) and len(payload) > _FLUFL_BODY_CAP:
                part.set_payload(payload[:_FLUFL_BODY_CAP])
    return capped


def _flufl_recipient(message: Message | None) -> tuple[str, str]:
    """(recipient, "hard"/"soft"/"") from flufl.bounce's detectors, on a copy capped at 4 KB a part."""
    if message is None:
        return "", ""
    try:
        temporary, permanent = all_failures(_capped_copy(message))
    except Exception:  # noqa: BLE001 - third-party detectors on hostile mail: a miss, never a failed delivery
        return "", ""
    for found, kind in ((permanent, "hard"), (temporary, "soft")):
        for address in sorted(found):
            value = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
            return value.strip().lower(), kind
    return "", ""


def bounce_detect(*, message: Message | None, from_email: str, subject: str, text: str) -> Bounce | None:
    """The bounce this mail reports, or None when it is not a bounce notice."""
    if message is not None:
        dsn = _from_dsn(message)
        if dsn is not None:
            return dsn
    head = (text or "")[:8192]
    if _BOUNCER.match(from_email or "") or _BOUNCE_SUBJECT.search(subject or ""):
        recipient, kind = _flufl_recipient(message)
        code = _STATUS.search(head)
        if code:
            kind = "hard" if code.group(1) == "5" else "soft" if code.group(1) == "4" else kind
        elif not kind:
            smtp = _SMTP_CODE.search(head)
            kind = "soft" if smtp and smtp.group(1) == "4" else "hard"
        return Bounce(kind or "hard", recipient, code.group(0) if code else "", "notice")
    if _DEAD_MAILBOX.search(" ".join(head.split())):
        return Bounce("hard", "", "", "dead_mailbox")
    return None
