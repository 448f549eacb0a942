"""The do-not-contact CSV: importing a tenant's existing list as suppressions, and exporting every opt-out
and suppression of a tenant in columns the import reads back (an export re-imports)."""
from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from messaging.compliance.audit import actor_fields
from messaging.compliance.selectors import active_filter
from messaging.compliance.suppressions import SuppressionInput, suppression_input, suppressions_upsert
from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason
from outreach import clock
from outreach.channels import CHANNEL_EMAIL, CHANNEL_EMAIL_DOMAIN, CHANNEL_SMS
from outreach.csv_safety import unescape_cell
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant
from outreach.tenancy.services import audit_record

# --------------------------------------------------------------------------- import


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
            yield reader.line_num, {k: unescape_cell((v or "").strip()) for k, v in row.items() if k}
    else:
        for line_num, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
            if cells and cells[0].strip():
                yield line_num, {"value": unescape_cell(cells[0].strip())}


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
    items: list[SuppressionInput] = []
    try:
        for line, row in _import_rows(data):
            report.rows += 1
            channel, value = _import_target(row)
            detail = row.get("detail") or row.get("reason") or "imported do-not-contact list"
            reason = SuppressionReason.DOMAIN if channel == CHANNEL_EMAIL_DOMAIN else SuppressionReason.MANUAL
            try:
                items.append(suppression_input(channel=channel, value=value, reason=reason, detail=detail,
                                                expires_at=None, now=now))
            except ApplicationError as exc:
                report.errors.append(ImportRowError(line=line, value=value, message=exc.message))
    except csv.Error as exc:
        raise ApplicationError(f"The file is not valid CSV: {exc}", field="file") from exc
    with transaction.atomic():
        suppressions_upsert(tenant_id=tenant.pk, items=items, now=now)
        distinct = {(i.channel, i.value) for i in items}  # a value listed twice counts once
        report.suppressed_domains = sum(1 for channel, _ in distinct if channel == CHANNEL_EMAIL_DOMAIN)
        report.suppressed_addresses = len(distinct) - report.suppressed_domains
        audit_record(tenant=tenant, action="suppression.import",
                     detail={"rows": report.rows, "addresses": report.suppressed_addresses,
                             "domains": report.suppressed_domains, "errors": len(report.errors),
                             "sha256": hashlib.sha256(data.encode()).hexdigest()},
                     **actor_fields(actor, actor_label))
    return report


# --------------------------------------------------------------------------- export

EXPORT_HEADER = ("kind", "channel", "value", "reason", "detail", "expires_at", "created_at")


def do_not_contact_export_rows(*, tenant: Tenant, include_expired: bool = False) -> Iterator[tuple]:
    """Every opt-out and suppression of a tenant as CSV rows (header first), streamed in chunks.

    The columns are ones suppressions_import_csv reads (channel, value, detail), so an export re-imports.
    """
    yield EXPORT_HEADER
    unsubscribes = (ContactUnsubscribe.objects.filter(tenant=tenant).order_by("id")
                    .values_list("channel", "channel_value", "source", "detail", "created_at"))
    for channel, value, source, detail, created_at in unsubscribes.iterator(chunk_size=2000):
        yield ("unsubscribe", channel, value, source, detail, "", created_at.isoformat())
    suppressions = CommunicationSuppression.objects.filter(tenant=tenant)
    if not include_expired:
        suppressions = suppressions.filter(active_filter(clock.now()))
    rows = suppressions.order_by("id").values_list("channel", "value", "reason", "detail", "expires_at",
                                                   "created_at")
    for channel, value, reason, detail, expires_at, created_at in rows.iterator(chunk_size=2000):
        yield ("suppression", channel, value, reason, detail, expires_at.isoformat() if expires_at else "",
               created_at.isoformat())
