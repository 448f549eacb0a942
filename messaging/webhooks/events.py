"""SendGrid event batches: validating a POSTed body, and normalising each event for storage and linking.

Runs on every POST (1,000 events each) and for every stored event, hence exact type checks rather than
isinstance chains, and one pass per event.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from messaging.webhooks.nesting import MAX_JSON_DEPTH, nesting_too_deep

_MAX_EPOCH = 32503680000  # year 3000: anything beyond is not a real event time
_MS_THRESHOLD = 100_000_000_000  # epoch seconds of the year 5138, epoch milliseconds of 1973
_STRING_FIELDS = ("sg_event_id", "sg_message_id", "url", "reason", "useragent")
# Kept in columns, or our own custom args echoed back: not repeated in MessageEvent.raw (the
# complete original stays in the webhook delivery's body). Halves the bytes of the hot insert.
_RAW_SKIP = frozenset({"email", "timestamp", "event", "sg_event_id", "smtp-id", "category", "url", "reason",
                       "tenant_id", "campaign_id", "contact_campaign_id", "node_id", "outbound_message_id"})

# Link scanners and security gateways that fetch every link (and often the pixel) of a mail.
SCANNER_USER_AGENT = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|trend ?micro|symantec|forcepoint|"
    r"cisco|ironport|fireeye|sophos|checkpoint|zscaler|scanner|linkscan|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|go-http-client|curl/|wget/|java/|okhttp|libwww|bot\b|crawler|spider",
    re.IGNORECASE,
)


# --- validation ---------------------------------------------------------------------------------------
# The endpoint refuses a body only when it is not an event batch at all (not an array, nested too deep);
# a bad event inside a batch is rejected alone when the delivery is processed (`event_problem`), so
# SendGrid, which retries or drops a batch as a whole, never loses the valid events with it.

def _timestamp_seconds(value: Any) -> float | None:
    """Epoch seconds from an event's `timestamp`, or None when it is not one.

    Epoch milliseconds (as in SendGrid's Single Send examples) are read as such: any value above
    _MS_THRESHOLD would be a year past 5000 in seconds, so the reading is unambiguous.
    """
    kind = type(value)
    if kind is str:
        if not value.isdigit():
            return None
        value = int(value)
    elif kind is not int and kind is not float:  # bool is not a timestamp
        return None
    if value >= _MS_THRESHOLD:
        value = value / 1000
    return float(value) if 0 < value < _MAX_EPOCH else None


def _nul_field(event: dict) -> str | None:
    """The first key whose name or string value holds a NUL (PostgreSQL text and jsonb cannot store one)."""
    stack: list[tuple[str, Any]] = list(event.items())
    while stack:
        key, value = stack.pop()
        if "\x00" in key or (type(value) is str and "\x00" in value):
            return key.replace("\x00", "\\0")
        if type(value) is dict:
            stack.extend((key, v) for v in value.values())
            stack.extend((k, None) for k in value)
        elif type(value) is list:
            stack.extend((key, v) for v in value)
    return None


def event_problem(event: Any, *, check_nul: bool = True) -> str | None:
    """Why one event cannot be stored (a sentence fragment naming the field), or None."""
    if type(event) is not dict:
        return "not an object"
    kind = event.get("event")
    if type(kind) is not str or not kind:
        return "missing 'event'"
    if _timestamp_seconds(event.get("timestamp")) is None:
        return "'timestamp' must be epoch seconds (or milliseconds)"
    email = event.get("email")
    if (type(email) is not str or not email) and kind != "account_status_change":
        return "missing 'email'"
    for key in _STRING_FIELDS:
        value = event.get(key)
        if value is not None and type(value) is not str:
            return f"'{key}' must be a string"
    if nesting_too_deep(event):
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    if check_nul:
        nul_key = _nul_field(event)
        if nul_key is not None:
            return f"'{nul_key}' holds a NUL character"
    return None


def event_batch_problem(events: Any) -> str | None:
    """Why a parsed body is not a SendGrid event batch at all, or None. Checked before anything is stored."""
    if type(events) is not list:
        return "body must be a JSON array of event objects"
    if nesting_too_deep(events, limit=MAX_JSON_DEPTH + 1):
        return f"events nested deeper than {MAX_JSON_DEPTH} levels"
    return None


# --- normalisation -------------------------------------------------------------------------------------

@dataclass(slots=True)
class NormalisedEvent:
    event_type: str
    email: str
    timestamp: float
    occurred_at: dt.datetime
    provider_event_id: str
    message_prefix: str
    custom_message_id: int | None
    custom_tenant_id: int | None
    url: str
    reason: str
    bounce_type: str
    is_machine: bool
    useragent: str
    dedupe_key: str
    raw_json: str
    delivery_id: int
    message: dict | None = None
    tenant_id: int | None = None
    extra: dict = field(default_factory=dict)
    # Unlinked event whose address several tenants mailed recently (no tenant could be told), or, for an
    # address-level action, that no tenant mailed within the window: the tenants that address-level
    # policy (hard bounce, opt-out) applies to. See address_policy.
    address_tenant_ids: tuple[int, ...] = ()
    # Why the message its custom args or sg_message_id named was not taken (linking._disagreement).
    link_refused: str = ""


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _bounce_type(event: dict, kind: str) -> str:
    if kind != "bounce":
        return ""
    return "soft" if str(event.get("type") or "").lower() == "blocked" else "hard"


def _is_machine(event: dict, kind: str, useragent: str) -> bool:
    """An open or click SendGrid flags as machine-made, or made by a known scanner's user agent."""
    return kind in ("open", "click") and (
        _truthy(event.get("sg_machine_open")) or bool(useragent and SCANNER_USER_AGENT.search(useragent))
    )


def _dedupe_key(event: dict, *, kind: str, email: str, timestamp: float, message_ref: str, detail: str) -> str:
    """Content key: stable across retries even when SendGrid hands the event a new sg_event_id."""
    if kind == "deferred":
        detail = f"{detail}|{event.get('attempt', '')}"
    content = f"sendgrid|{message_ref}|{email}|{kind}|{timestamp:.3f}|{detail}"
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def normalise_event(event: dict, *, delivery_id: int) -> NormalisedEvent:
    kind = str(event.get("event") or "")
    email = str(event.get("email") or "").strip().lower()
    timestamp = _timestamp_seconds(event.get("timestamp"))
    if timestamp is None:
        raise ValueError("'timestamp' must be epoch seconds (or milliseconds)")
    sg_message_id = str(event.get("sg_message_id") or "")
    prefix = sg_message_id.split(".", 1)[0] if sg_message_id else ""
    custom_message_id = _int_or_none(event.get("outbound_message_id"))
    url = str(event.get("url") or "")
    reason = str(event.get("reason") or event.get("response") or "")
    useragent = str(event.get("useragent") or "")
    message_ref = prefix or (f"om:{custom_message_id}" if custom_message_id else "")
    return NormalisedEvent(
        event_type=kind[:32],
        email=email[:254],
        timestamp=timestamp,
        occurred_at=dt.datetime.fromtimestamp(timestamp, dt.UTC),
        provider_event_id=str(event.get("sg_event_id") or "")[:128],
        message_prefix=prefix[:128],
        custom_message_id=custom_message_id,
        custom_tenant_id=_int_or_none(event.get("tenant_id")),
        url=url,
        reason=reason,
        bounce_type=_bounce_type(event, kind),
        is_machine=_is_machine(event, kind, useragent),
        useragent=useragent,
        dedupe_key=_dedupe_key(event, kind=kind, email=email, timestamp=timestamp, message_ref=message_ref,
                               detail=url or reason),
        raw_json=orjson.dumps({k: v for k, v in event.items() if k not in _RAW_SKIP}).decode("utf-8"),
        delivery_id=delivery_id,
    )
