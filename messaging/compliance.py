"""Opt-outs and suppressions: who we must never contact, and the checks every send path makes.

Two tables hold the policy (see docs/compliance.md):

- `contact_unsubscribes`: a person said stop. Keyed by (tenant, channel, normalised address), never by
  contact, so it outlives deleting and re-uploading the contact. Permanent until an operator
  resubscribes the address with an audit entry.
- `communication_suppressions`: the system or an operator decided not to contact an address (hard bounce,
  spam report, repeated soft bounces, invalid address, manual) or a whole domain (channel "email_domain").
  Rows may expire (soft bounces); a permanent row is never downgraded to an expiring one.

Every public function here is keyword-only and tenant-scoped. `tenant` arguments accept a Tenant or its id
so that callers holding only ids (webhook processing) need no extra query.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import logging
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.utils.crypto import constant_time_compare, salted_hmac

from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    SuppressionReason,
    UnsubscribeSource,
)
from outreach import clock
from outreach.errors import ApplicationError, NotFoundError
from outreach.tenancy.models import Tenant
from outreach.tenancy.services import audit_record

CHANNEL_EMAIL = "email"
CHANNEL_SMS = "sms"
CHANNEL_EMAIL_DOMAIN = "email_domain"
ADDRESS_CHANNELS = (CHANNEL_EMAIL, CHANNEL_SMS)
SUPPRESSION_CHANNELS = (CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_EMAIL_DOMAIN)

# Reasons that are permanent unless the caller passes an explicit expiry.
PERMANENT_REASONS = frozenset({
    SuppressionReason.HARD_BOUNCE, SuppressionReason.SPAM_REPORT, SuppressionReason.INVALID,
    SuppressionReason.MANUAL, SuppressionReason.DOMAIN, SuppressionReason.DROPPED,
})

BLOCK_UNSUBSCRIBED = "unsubscribed"
BLOCK_INVALID_ADDRESS = "invalid_address"

# Bumping the salt invalidates every unsubscribe link ever sent: never change it.
UNSUBSCRIBE_TOKEN_SALT = "messaging.unsubscribe.v1"
_MAILTO_HMAC_SALT = "messaging.unsubscribe.mailto.v1"
_MAILTO_LOCAL_PREFIX = "unsubscribe"
_CHANNEL_CODES = {CHANNEL_EMAIL: 1, CHANNEL_SMS: 2}
_CHANNELS_BY_CODE = {v: k for k, v in _CHANNEL_CODES.items()}

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_PHONE_SEPARATORS_RE = re.compile(r"[\s().\-/]")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- settings


def _soft_bounce_hours() -> float:
    return float(getattr(settings, "SUPPRESSION_SOFT_BOUNCE_HOURS", 72))


def _default_phone_country_code() -> str:
    return str(getattr(settings, "PHONE_DEFAULT_COUNTRY_CODE", "1")).lstrip("+")


def _mailto_domain() -> str:
    configured = getattr(settings, "UNSUBSCRIBE_MAILTO_DOMAIN", "")
    return configured or (urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost")


# --------------------------------------------------------------------------- normalisation


class InvalidAddress(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="value")


def _tenant_id(tenant: Tenant | int) -> int:
    return tenant if isinstance(tenant, int) else tenant.pk


def normalise_email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidAddress(f"{value!r} is not a valid email address.") from exc
    return email


def normalise_phone(value: str, *, default_country_code: str | None = None) -> str:
    """E.164 without a phone library: strips separators, maps 00/011 prefixes, applies the default country.

    Numbers written without a country code get the configured default (PHONE_DEFAULT_COUNTRY_CODE); a
    national trunk 0 is dropped. This does not check number plans: a syntactically valid E.164 string is
    what the opt-out key needs, and the same input always yields the same key.
    """
    raw = _PHONE_SEPARATORS_RE.sub("", (value or "").strip())
    country = default_country_code or _default_phone_country_code()
    if raw.startswith("+"):
        digits = raw[1:]
    elif raw.startswith("00"):
        digits = raw[2:]
    elif raw.startswith("011") and country == "1":
        digits = raw[3:]
    elif country == "1" and len(raw) == 11 and raw.startswith("1"):
        digits = raw
    else:
        digits = country + raw.lstrip("0")
    if not digits.isdigit() or digits.startswith("0") or not 8 <= len(digits) <= 15:
        raise InvalidAddress(f"{value!r} is not a valid phone number.")
    return "+" + digits


def normalise_domain(value: str) -> str:
    """A bare, lower-cased domain; accepts "@acme.com", "acme.com." and a full address (takes its domain)."""
    domain = (value or "").strip().lower().rsplit("@", 1)[-1].rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"{value!r} is not a valid domain.") from exc
    if not _DOMAIN_RE.match(domain):
        raise InvalidAddress(f"{value!r} is not a valid domain.")
    return domain


def normalise_address(channel: str, value: str) -> str:
    """The canonical key for an address: lower-cased email, E.164 phone, bare domain for email_domain."""
    if channel == CHANNEL_EMAIL:
        return normalise_email(value)
    if channel == CHANNEL_SMS:
        return normalise_phone(value)
    if channel == CHANNEL_EMAIL_DOMAIN:
        return normalise_domain(value)
    raise ApplicationError(
        f"Unknown channel {channel!r}; choose one of {', '.join(SUPPRESSION_CHANNELS)}.", field="channel"
    )


def _require_address_channel(channel: str) -> None:
    if channel not in ADDRESS_CHANNELS:
        raise ApplicationError(
            f"Unknown channel {channel!r}; choose one of {', '.join(ADDRESS_CHANNELS)}.", field="channel"
        )


# --------------------------------------------------------------------------- unsubscribes


def unsubscribe_record(*, tenant: Tenant | int, channel: str, value: str, source: str, detail: str = "",
                       contact=None) -> ContactUnsubscribe:
    """Record an opt-out (idempotent: the first record stands) and stop the address's active campaigns.

    The opt-out is what must never be lost. Stopping the campaigns runs in a savepoint: if it fails, the
    opt-out still commits and the failure is logged; the send-time check blocks every later mail to the
    address anyway, and a blocked send stops its campaign through the engine's `suppressed` event.
    """
    _require_address_channel(channel)
    if source not in UnsubscribeSource.values:
        raise ApplicationError(f"Unknown unsubscribe source {source!r}.", field="source")
    tenant_id = _tenant_id(tenant)
    normalised = normalise_address(channel, value)
    with transaction.atomic():
        row, created = ContactUnsubscribe.objects.get_or_create(
            tenant_id=tenant_id, channel=channel, channel_value=normalised,
            defaults={"source": source, "detail": detail[:2000], "contact": contact},
        )
        # Imported here: campaigns imports messaging models; a module-level import would be circular.
        from campaigns.services import contact_campaigns_stop_for_address

        # Run even when the row already existed: a campaign enrolled since must stop too (a no-op otherwise).
        try:
            with transaction.atomic():
                contact_campaigns_stop_for_address(
                    tenant_id=tenant_id, channel=channel, value=normalised,
                    reason=f"unsubscribe:{row.source}",
                    event_type="stop_request" if source == UnsubscribeSource.REPLY else "unsubscribe",
                )
        except Exception:
            logger.exception("opt-out of %s kept, but stopping its campaigns failed (tenant %s)",
                             normalised, tenant_id)
    row.was_created = created  # lets the API answer 201 for a new opt-out and 200 for a repeat
    return row


def _row_snapshot(row: ContactUnsubscribe | CommunicationSuppression) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in row._meta.concrete_fields:
        value = getattr(row, f.attname)
        data[f.attname] = value.isoformat() if isinstance(value, dt.datetime) else value
    return data


def _actor_fields(actor: Any, actor_label: str) -> dict[str, Any]:
    user = actor if getattr(actor, "pk", None) else None
    return {"actor": user, "actor_label": actor_label or (str(actor) if actor is not None else "")}


def unsubscribe_remove(*, tenant: Tenant, channel: str, value: str, actor: Any, reason: str,
                       actor_label: str = "") -> ContactUnsubscribe:
    """Resubscribe an address: delete its opt-out and audit who, when, why and what was removed."""
    _require_address_channel(channel)
    normalised = normalise_address(channel, value)
    return _delete_audited(
        ContactUnsubscribe.objects.filter(tenant=tenant, channel=channel, channel_value=normalised),
        tenant=tenant, action="unsubscribe.remove", reason=reason, actor=actor, actor_label=actor_label,
        reason_needed="Say why the address is resubscribed (it is kept in the audit trail).",
        missing=f"{normalised} is not unsubscribed.",
    )


# --------------------------------------------------------------------------- suppressions

_SUPPRESSION_UPSERT_SQL = """
INSERT INTO communication_suppressions AS s
    (tenant_id, channel, value, reason, detail, expires_at, created_at, updated_at)
SELECT %s, i.channel, i.value, i.reason, i.detail, i.expires_at, %s, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
    AS i(channel, value, reason, detail, expires_at)
ON CONFLICT (tenant_id, channel, value) DO UPDATE SET
    -- A permanent row wins: its reason, detail and (absent) expiry stand whatever arrives later.
    reason = CASE WHEN s.expires_at IS NULL THEN s.reason ELSE EXCLUDED.reason END,
    detail = CASE WHEN s.expires_at IS NULL THEN s.detail ELSE EXCLUDED.detail END,
    expires_at = CASE
        WHEN s.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
        ELSE GREATEST(s.expires_at, EXCLUDED.expires_at)
    END,
    updated_at = EXCLUDED.updated_at
RETURNING {columns}
"""

UPSERT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class _SuppressionInput:
    channel: str
    value: str  # normalised
    reason: str
    detail: str
    expires_at: dt.datetime | None


def _suppression_input(*, channel: str, value: str, reason: str, detail: str,
                       expires_at: dt.datetime | None, now: dt.datetime) -> _SuppressionInput:
    """Validate and normalise one suppression (raises ApplicationError naming the field)."""
    if channel not in SUPPRESSION_CHANNELS:
        raise ApplicationError(
            f"Unknown channel {channel!r}; choose one of {', '.join(SUPPRESSION_CHANNELS)}.", field="channel"
        )
    if reason not in SuppressionReason.values:
        raise ApplicationError(
            f"Unknown reason {reason!r}; choose one of {', '.join(SuppressionReason.values)}.", field="reason"
        )
    if channel == CHANNEL_EMAIL_DOMAIN:
        if reason not in (SuppressionReason.DOMAIN, SuppressionReason.MANUAL):
            raise ApplicationError("A domain entry takes the reason 'domain'.", field="reason")
        reason = SuppressionReason.DOMAIN
    elif reason == SuppressionReason.DOMAIN:
        raise ApplicationError("The reason 'domain' is for channel email_domain.", field="reason")
    normalised = normalise_address(channel, value)
    if expires_at is None and reason == SuppressionReason.SOFT_BOUNCE:
        expires_at = now + dt.timedelta(hours=_soft_bounce_hours())
    if expires_at is not None and expires_at <= now:
        raise ApplicationError("The expiry must be in the future.", field="expires_at")
    return _SuppressionInput(channel=channel, value=normalised, reason=reason, detail=(detail or "")[:2000],
                             expires_at=expires_at)


def _suppressions_upsert(*, tenant_id: int, items: list[_SuppressionInput],
                         now: dt.datetime) -> list[CommunicationSuppression]:
    """One INSERT ... ON CONFLICT per batch; the same (channel, value) twice in a batch keeps the last."""
    unique = list({(i.channel, i.value): i for i in items}.values())
    fields = CommunicationSuppression._meta.concrete_fields
    columns = ", ".join(f"s.{connection.ops.quote_name(f.column)}" for f in fields)
    sql = _SUPPRESSION_UPSERT_SQL.format(columns=columns)
    rows: list[CommunicationSuppression] = []
    with connection.cursor() as cursor:
        for start in range(0, len(unique), UPSERT_BATCH_SIZE):
            batch = unique[start:start + UPSERT_BATCH_SIZE]
            cursor.execute(sql, [
                tenant_id, now, now,
                [i.channel for i in batch], [i.value for i in batch], [i.reason for i in batch],
                [i.detail for i in batch], [i.expires_at for i in batch],
            ])
            rows.extend(CommunicationSuppression.from_db(connection.alias, [f.attname for f in fields], values)
                        for values in cursor.fetchall())
    return rows


def suppression_add(*, tenant: Tenant | int, channel: str, value: str, reason: str, detail: str = "",
                    expires_at: dt.datetime | None = None) -> CommunicationSuppression:
    """Upsert a suppression in one statement (safe under concurrent webhook workers).

    A soft bounce without an expiry expires after SUPPRESSION_SOFT_BOUNCE_HOURS. Merging rules: a permanent
    row never becomes expiring (nor changes reason: the first permanent cause stands); an expiring row
    becomes permanent when a permanent reason arrives; two expiring entries keep the later expiry.
    """
    now = clock.now()
    item = _suppression_input(channel=channel, value=value, reason=reason, detail=detail,
                              expires_at=expires_at, now=now)
    return _suppressions_upsert(tenant_id=_tenant_id(tenant), items=[item], now=now)[0]


def domain_suppression_add(*, tenant: Tenant | int, domain: str, detail: str = "") -> CommunicationSuppression:
    """Tenant-wide do-not-contact domain: blocks every address at that domain (not its subdomains)."""
    return suppression_add(tenant=tenant, channel=CHANNEL_EMAIL_DOMAIN, value=domain,
                           reason=SuppressionReason.DOMAIN, detail=detail)


def suppression_remove(*, tenant: Tenant, channel: str, value: str, actor: Any, reason: str,
                       actor_label: str = "") -> CommunicationSuppression:
    """Lift a suppression (or a do-not-contact domain) with an audit entry holding the removed row."""
    normalised = normalise_address(channel, value)
    return _delete_audited(
        CommunicationSuppression.objects.filter(tenant=tenant, channel=channel, value=normalised),
        tenant=tenant, action="suppression.remove", reason=reason, actor=actor, actor_label=actor_label,
        reason_needed="Say why the suppression is lifted (it is kept in the audit trail).",
        missing=f"{channel}:{normalised} is not suppressed.",
    )


def _delete_audited(queryset, *, tenant: Tenant, action: str, reason: str, actor: Any, actor_label: str,
                    reason_needed: str, missing: str):
    """Delete the one row `queryset` names, with an audit entry holding who, why and the removed row."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(reason_needed, field="reason")
    with transaction.atomic():
        row = queryset.select_for_update().first()
        if row is None:
            raise NotFoundError(missing)
        audit_record(tenant=tenant, action=action, target=row,
                     detail={"reason": reason, "removed": _row_snapshot(row)}, **_actor_fields(actor, actor_label))
        row.delete()
    return row


# --------------------------------------------------------------------------- send-time checks


def send_block_reasons(*, tenant_id: int, channel: str, values: Iterable[str]) -> dict[str, str]:
    """Why each blocked address may not be contacted; addresses free to contact are absent.

    Keys are the values exactly as passed. Two queries whatever the number of values (none for an empty
    list): unsubscribes, then suppressions of the addresses or their domains (expired rows ignored).
    Reasons: "unsubscribed", "suppressed:<reason>", "suppressed:domain", "invalid_address".
    """
    if channel not in ADDRESS_CHANNELS:
        raise ApplicationError(f"Unknown channel {channel!r}.", field="channel")
    values = list(dict.fromkeys(values))
    blocked: dict[str, str] = {}
    normalised_by_value: dict[str, str] = {}
    for value in values:
        try:
            normalised_by_value[value] = normalise_address(channel, value)
        except InvalidAddress:
            blocked[value] = BLOCK_INVALID_ADDRESS
    if not normalised_by_value:
        return blocked
    keys = set(normalised_by_value.values())
    domains = {key.rsplit("@", 1)[1] for key in keys} if channel == CHANNEL_EMAIL else set()

    unsubscribed = set(
        ContactUnsubscribe.objects.filter(tenant_id=tenant_id, channel=channel, channel_value__in=keys)
        .values_list("channel_value", flat=True)
    )
    match = Q(channel=channel, value__in=keys)
    if domains:
        match |= Q(channel=CHANNEL_EMAIL_DOMAIN, value__in=domains)
    suppressed: dict[str, str] = {}
    suppressed_domains: set[str] = set()
    rows = (CommunicationSuppression.objects.filter(tenant_id=tenant_id)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now())).filter(match)
            .values_list("channel", "value", "reason"))
    for row_channel, row_value, row_reason in rows:
        if row_channel == CHANNEL_EMAIL_DOMAIN:
            suppressed_domains.add(row_value)
        else:
            suppressed[row_value] = row_reason

    for value, key in normalised_by_value.items():
        if key in unsubscribed:
            blocked[value] = BLOCK_UNSUBSCRIBED
        elif key in suppressed:
            blocked[value] = f"suppressed:{suppressed[key]}"
        elif channel == CHANNEL_EMAIL and key.rsplit("@", 1)[1] in suppressed_domains:
            blocked[value] = f"suppressed:{SuppressionReason.DOMAIN}"
    return blocked


def send_block_reason(*, tenant_id: int, channel: str, value: str) -> str | None:
    return send_block_reasons(tenant_id=tenant_id, channel=channel, values=[value]).get(value)


# --------------------------------------------------------------------------- links and headers


@dataclass(frozen=True)
class UnsubscribeTarget:
    tenant_id: int
    channel: str
    value: str


def unsubscribe_token(*, tenant: Tenant | int, channel: str, value: str) -> str:
    """A signed, non-expiring token naming (tenant, channel, address); altering any part breaks it."""
    _require_address_channel(channel)
    payload = [_tenant_id(tenant), channel, normalise_address(channel, value)]
    return signing.dumps(payload, salt=UNSUBSCRIBE_TOKEN_SALT, compress=True)


def unsubscribe_token_read(token: str) -> UnsubscribeTarget:
    """Verify a token; raises signing.BadSignature for anything tampered, truncated or malformed."""
    if not token or len(token) > 2000:
        raise signing.BadSignature("Missing or oversized token.")
    payload = signing.loads(token, salt=UNSUBSCRIBE_TOKEN_SALT)
    if (not isinstance(payload, list) or len(payload) != 3 or not isinstance(payload[0], int)
            or payload[1] not in ADDRESS_CHANNELS or not isinstance(payload[2], str)):
        raise signing.BadSignature("Token payload has the wrong shape.")
    return UnsubscribeTarget(tenant_id=payload[0], channel=payload[1], value=payload[2])


def unsubscribe_url(*, tenant: Tenant | int, channel: str, value: str) -> str:
    token = unsubscribe_token(tenant=tenant, channel=channel, value=value)
    return f"{settings.PUBLIC_BASE_URL}/unsubscribe?{urlencode({'token': token})}"


def _mailto_mac(tenant_id: int, channel: str, value: str) -> bytes:
    return salted_hmac(_MAILTO_HMAC_SALT, f"{tenant_id}|{channel}|{value}", algorithm="sha256").digest()[:10]


def unsubscribe_mailto_local_part(*, tenant: Tenant | int, channel: str, value: str) -> str:
    """`unsubscribe+<tag>`: the tag binds tenant, channel and an HMAC of the address, and stays short.

    An address cannot fit in a local part (64 octets at most, RFC 5321), and MTAs may change case, so
    the tag is lower-case base32 of (tenant id, channel code, 80-bit HMAC). The receiving side checks it
    against the mail's From address; the full signed token also travels in the subject for mail sent from
    another address (see unsubscribe_target_from_mail).
    """
    tenant_id = _tenant_id(tenant)
    normalised = normalise_address(channel, value)
    raw = struct.pack(">QB", tenant_id, _CHANNEL_CODES[channel]) + _mailto_mac(tenant_id, channel, normalised)
    tag = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return f"{_MAILTO_LOCAL_PREFIX}+{tag}"


def unsubscribe_mailto(*, tenant: Tenant | int, channel: str, value: str) -> str:
    local = unsubscribe_mailto_local_part(tenant=tenant, channel=channel, value=value)
    token = unsubscribe_token(tenant=tenant, channel=channel, value=value)
    return f"mailto:{local}@{_mailto_domain()}?subject={quote('unsubscribe ' + token, safe='')}"


def list_unsubscribe_headers(*, tenant: Tenant | int, channel: str, value: str) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers for one recipient (Gmail and Yahoo require both for bulk mail)."""
    url = unsubscribe_url(tenant=tenant, channel=channel, value=value)
    mailto = unsubscribe_mailto(tenant=tenant, channel=channel, value=value)
    return {
        "List-Unsubscribe": f"<{url}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_mailto_tenant_id(*, address: str) -> int | None:
    """The tenant id in an `unsubscribe+<tag>@<UNSUBSCRIBE_MAILTO_DOMAIN>` address, else None.

    The HMAC in the tag is NOT checked (that needs the subscriber's address, see
    unsubscribe_target_from_mail): this only tells which tenant a mail to the address concerns, e.g. for
    the inbound handler to route a mail written from an alias. Never treat it as proof of anything.
    """
    local, _, domain = (address or "").strip().strip("<>").lower().rpartition("@")
    if not local or domain != _mailto_domain().lower():
        return None
    prefix, _, tag = local.partition("+")
    if prefix != _MAILTO_LOCAL_PREFIX or not tag:
        return None
    try:
        raw = base64.b32decode(tag.upper() + "=" * (-len(tag) % 8))
        tenant_id, code = struct.unpack(">QB", raw[:9])
    except (ValueError, struct.error):
        return None
    return tenant_id if tenant_id > 0 and code in _CHANNELS_BY_CODE else None


_TOKEN_IN_SUBJECT_RE = re.compile(r"unsubscribe\s+(\S+)", re.IGNORECASE)


def unsubscribe_target_from_mail(*, to_addresses: Iterable[str], from_address: str,
                                 subject: str = "") -> UnsubscribeTarget | None:
    """Recognise a mail sent to our List-Unsubscribe mailto (for the inbound-mail handler).

    A valid signed token in the subject wins (works even when the person writes from an alias); otherwise a
    `unsubscribe+<tag>@` recipient whose HMAC matches the From address. None if it is not an unsubscribe.
    """
    found = _TOKEN_IN_SUBJECT_RE.search(subject or "")
    if found:
        try:
            return unsubscribe_token_read(found.group(1))
        except signing.BadSignature:
            pass
    for address in to_addresses:
        local = (address or "").strip().strip("<>").rsplit("@", 1)[0].lower()
        prefix, _, tag = local.partition("+")
        if prefix != _MAILTO_LOCAL_PREFIX or not tag:
            continue
        try:
            raw = base64.b32decode(tag.upper() + "=" * (-len(tag) % 8))
            tenant_id, code = struct.unpack(">QB", raw[:9])
        except (ValueError, struct.error):
            continue
        channel = _CHANNELS_BY_CODE.get(code)
        if channel is None:
            continue
        try:
            sender = normalise_address(channel, from_address)
        except InvalidAddress:
            continue
        if constant_time_compare(raw[9:], _mailto_mac(tenant_id, channel, sender)):
            return UnsubscribeTarget(tenant_id=tenant_id, channel=channel, value=sender)
    return None


# --------------------------------------------------------------------------- CSV import


@dataclass
class ImportRowError:
    line: int
    value: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    suppressed_addresses: int = 0
    suppressed_domains: int = 0
    errors: list[ImportRowError] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.suppressed_addresses + self.suppressed_domains


MAX_IMPORT_BYTES = 20 * 1024 * 1024
_IMPORT_VALUE_COLUMNS = ("value", "email", "address", "domain", "phone")


def _import_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    """Rows with a header (value/email/domain/phone, optional channel, detail) or one bare value per line."""
    sample = text[:4096]
    first_line = sample.splitlines()[0].strip().lower() if sample.strip() else ""
    header_cells = {c.strip() for c in first_line.split(",")}
    if header_cells & set(_IMPORT_VALUE_COLUMNS):
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames or []]
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}
    else:
        for line_num, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
            if cells and cells[0].strip():
                yield line_num, {"value": cells[0].strip()}


_CHANNEL_ALIASES = {"email": CHANNEL_EMAIL, "sms": CHANNEL_SMS, "phone": CHANNEL_SMS,
                    "domain": CHANNEL_EMAIL_DOMAIN, "email_domain": CHANNEL_EMAIL_DOMAIN}


def _import_target(row: dict[str, str]) -> tuple[str, str]:
    """(channel, raw value) for one CSV row; infers the channel when the file does not name it."""
    named = (row.get("channel") or "").lower()
    channel = _CHANNEL_ALIASES.get(named, named)
    for column, implied in (("domain", CHANNEL_EMAIL_DOMAIN), ("email", CHANNEL_EMAIL), ("phone", CHANNEL_SMS)):
        if row.get(column):
            return channel or implied, row[column]
    value = row.get("value") or row.get("address") or ""
    if not channel:
        if "@" in value.lstrip("@"):
            channel = CHANNEL_EMAIL
        elif value.startswith("+") or sum(c.isdigit() for c in value) >= max(1, len(value) // 2):
            channel = CHANNEL_SMS
        else:
            channel = CHANNEL_EMAIL_DOMAIN
    return channel, value


def suppressions_import_csv(*, tenant: Tenant, file, actor: Any = None, actor_label: str = "") -> ImportReport:
    """Import a tenant's existing do-not-contact list: addresses become manual suppressions, domains
    do-not-contact domains.

    Every row is validated first; a bad row is reported (line, value, message) and skipped, never
    half-written; the good rows are upserted in batches of UPSERT_BATCH_SIZE (one statement each), so a
    100k-row list takes seconds, not minutes. Accepts bytes, str or a file object (UTF-8, BOM tolerated).
    """
    data = file if isinstance(file, (bytes, str)) else file.read()
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise ApplicationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.", field="file")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApplicationError("The file is not UTF-8 text.", field="file") from exc
    data = data.lstrip("\ufeff")
    report = ImportReport()
    now = clock.now()
    items: list[_SuppressionInput] = []
    try:
        for line, row in _import_rows(data):
            report.rows += 1
            channel, value = _import_target(row)
            detail = row.get("detail") or row.get("reason") or "imported do-not-contact list"
            reason = SuppressionReason.DOMAIN if channel == CHANNEL_EMAIL_DOMAIN else SuppressionReason.MANUAL
            try:
                items.append(_suppression_input(channel=channel, value=value, reason=reason, detail=detail,
                                                expires_at=None, now=now))
            except ApplicationError as exc:
                report.errors.append(ImportRowError(line=line, value=value, message=exc.message))
    except csv.Error as exc:
        raise ApplicationError(f"The file is not valid CSV: {exc}", field="file") from exc
    with transaction.atomic():
        _suppressions_upsert(tenant_id=tenant.pk, items=items, now=now)
        distinct = {(i.channel, i.value) for i in items}  # a value listed twice counts once
        report.suppressed_domains = sum(1 for channel, _ in distinct if channel == CHANNEL_EMAIL_DOMAIN)
        report.suppressed_addresses = len(distinct) - report.suppressed_domains
        audit_record(tenant=tenant, action="suppression.import",
                     detail={"rows": report.rows, "addresses": report.suppressed_addresses,
                             "domains": report.suppressed_domains, "errors": len(report.errors),
                             "sha256": hashlib.sha256(data.encode()).hexdigest()},
                     **_actor_fields(actor, actor_label))
    return report
