"""The CSV import of leads and contacts: parse and check the upload, store it, import it in batches.

    import_job_create(tenant=..., content=...)  # checks size, encoding and header; queues the job after commit
    import_job_run(import_job_id=...)           # the task: batches of rows, each committed with the progress

Rows are cleaned by the same contact_fields_clean as the API, so an imported contact and one created over
the API are the same. Each row is either fully imported (lead, contact, channels) or reported with its
errors; a batch goes in bulk and falls back to one savepoint per row when the bulk insert fails.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from contacts.extension_points import address_block_reasons
from contacts.models import Channel, Contact, ContactChannel, ImportJob, Lead
from contacts.services import EMAIL_TAKEN, channel_rows, contact_fields_clean, leads_enqueue_analysis
from outreach import clock
from outreach.addresses import normalise_optional_domain
from outreach.errors import ApplicationError
from outreach.publishing import publish, publish_after_commit
from outreach.queues import TaskName
from outreach.tenancy.models import Tenant
from outreach.webhooks_out.models import EventType
from outreach.webhooks_out.services import emit

logger = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 500
MAX_STORED_ERRORS = 10_000


def import_max_bytes() -> int:
    return settings.CONTACT_IMPORT_MAX_BYTES


def _max_import_rows() -> int:
    return settings.CONTACT_IMPORT_MAX_ROWS


# Accepted header spellings (compared lower-cased, with spaces and dashes read as underscores).
_HEADER_ALIASES = {
    "company": "company", "company_name": "company", "lead": "company", "lead_name": "company",
    "organisation": "company", "organization": "company", "account": "company",
    "domain": "domain", "website": "domain", "company_domain": "domain", "url": "domain",
    "first_name": "first_name", "firstname": "first_name", "given_name": "first_name",
    "last_name": "last_name", "lastname": "last_name", "surname": "last_name", "family_name": "last_name",
    "title": "title", "job_title": "title", "position": "title",
    "email": "email", "email_address": "email", "e_mail": "email",
    "phone": "phone", "phone_number": "phone", "mobile": "phone", "telephone": "phone",
    "timezone": "timezone", "time_zone": "timezone", "tz": "timezone",
    "language": "language", "lang": "language", "locale": "language",
}
IMPORT_COLUMNS = ("company", "domain", "first_name", "last_name", "title", "email", "phone", "timezone", "language")


@dataclass
class ParsedCsv:
    columns: dict[int, str]  # position -> our column name
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line number, values)


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", (name or "").strip().lower().lstrip("\ufeff"))


def import_csv_parse(content: str) -> ParsedCsv:
    """Read the header and rows. Raises ApplicationError(field="file") when the file cannot be a contact list."""
    if "\x00" in content:
        raise ApplicationError("The file is not a text CSV file.", field="file")
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ApplicationError("The file is empty.", field="file")
        columns: dict[int, str] = {}
        for position, name in enumerate(header):
            ours = _HEADER_ALIASES.get(_header_key(name))
            if ours and ours not in columns.values():
                columns[position] = ours
        if "email" not in columns.values() and "phone" not in columns.values():
            raise ApplicationError(
                "The header needs an email or a phone column; recognised columns: " + ", ".join(IMPORT_COLUMNS),
                field="file",
            )
        parsed = ParsedCsv(columns=columns)
        limit = _max_import_rows()
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are not rows anyone meant
            if len(parsed.rows) >= limit:
                raise ApplicationError(f"At most {limit} rows per import; split the file.", field="file")
            values = {name: cells[pos] if pos < len(cells) else "" for pos, name in columns.items()}
            parsed.rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise ApplicationError(f"The file is not valid CSV: {exc}", field="file") from exc
    return parsed


def import_job_create(*, tenant: Tenant, content: bytes | str, filename: str = "", created_by=None,
                      actor_label: str = "") -> ImportJob:
    """Check the upload (size, encoding, header), store it, and enqueue the import after commit."""
    if isinstance(content, bytes):
        if len(content) > import_max_bytes():
            raise ApplicationError(f"The file is larger than {import_max_bytes()} bytes.", field="file")
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApplicationError("The file is not UTF-8 text.", field="file") from exc
    else:
        text = content
    parsed = import_csv_parse(text)
    if not parsed.rows:
        raise ApplicationError("The file has a header but no rows.", field="file")
    job = ImportJob.objects.create(
        tenant=tenant, content=text, filename=(filename or "")[:255], total_rows=len(parsed.rows),
        created_by=created_by if getattr(created_by, "pk", None) else None, actor_label=actor_label[:200],
    )
    publish_after_commit(TaskName.IMPORT_CONTACTS_CSV, args=[job.pk])
    return job


@dataclass
class _BatchOutcome:
    imported: int = 0
    unsubscribed: int = 0
    leads_created: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _ValidRow:
    line: int
    contact: dict[str, str]
    lead_key: tuple[str, str] | None  # ("domain", "acme.com") or ("name", "acme inc")
    lead_name: str
    lead_domain: str


def _validate_rows(rows: Iterable[tuple[int, dict[str, str]]], *, seen_emails: dict[str, int],
                   outcome: _BatchOutcome) -> list[_ValidRow]:
    valid = []
    for line, values in rows:
        cleaned, problems = contact_fields_clean(values)
        lead_name = (values.get("company") or "").strip()
        lead_domain = ""
        try:
            lead_domain = normalise_optional_domain(values.get("domain") or "")
        except ApplicationError as exc:
            problems["domain"] = exc.message
        if len(lead_name) > 200:
            problems["company"] = "At most 200 characters."
        if problems:
            outcome.errors.extend({"row": line, "field": name, "message": message}
                                  for name, message in problems.items())
            continue
        email = cleaned.get("email", "")
        if email and email in seen_emails:
            outcome.errors.append({"row": line, "field": "email",
                                   "message": f"Same email address as row {seen_emails[email]}."})
            continue
        if email:
            seen_emails[email] = line
        if lead_domain:
            key: tuple[str, str] | None = ("domain", lead_domain)
        elif lead_name:
            key = ("name", lead_name.lower())
        else:
            key = None
        valid.append(_ValidRow(line=line, contact=cleaned, lead_key=key, lead_name=lead_name or lead_domain,
                               lead_domain=lead_domain))
    return valid


def _existing_leads(*, tenant_id: int, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    domains = [value for kind, value in keys if kind == "domain"]
    names = [value for kind, value in keys if kind == "name"]
    if not domains and not names:
        return {}
    found: dict[tuple[str, str], int] = {}
    queryset = (Lead.objects.filter(tenant_id=tenant_id).annotate(name_lower=Lower("name"))
                .filter(Q(domain__in=domains) | Q(domain="", name_lower__in=names))
                .order_by("id").values_list("id", "domain", "name_lower"))
    for lead_id, domain, name_lower in queryset:
        key = ("domain", domain) if domain else ("name", name_lower)
        found.setdefault(key, lead_id)  # the oldest lead wins when several match
    return found


def _import_valid_rows(*, tenant_id: int, rows: list[_ValidRow], outcome: _BatchOutcome,
                       per_row: bool) -> None:
    """Insert the rows. In bulk mode any failure aborts the caller's transaction; per-row mode
    gives each row its own savepoint so one bad row fails alone and never leaves a part behind."""
    emails = [row.contact["email"] for row in rows if row.contact.get("email")]
    taken = set(Contact.objects.filter(tenant_id=tenant_id, email__in=emails).values_list("email", flat=True))
    lead_ids = _existing_leads(tenant_id=tenant_id, keys={row.lead_key for row in rows if row.lead_key})

    todo = []
    for row in rows:
        if row.contact.get("email") in taken:
            outcome.errors.append({"row": row.line, "field": "email", "message": EMAIL_TAKEN})
            continue
        todo.append(row)

    if per_row:
        for row in todo:
            _import_one_row(tenant_id=tenant_id, row=row, lead_ids=lead_ids, outcome=outcome)
    else:
        _import_rows_in_bulk(tenant_id=tenant_id, rows=todo, lead_ids=lead_ids, outcome=outcome)


def _import_one_row(*, tenant_id: int, row: _ValidRow, lead_ids: dict[tuple[str, str], int],
                    outcome: _BatchOutcome) -> None:
    """One row in its own savepoint: its lead (when new), its contact and channels, or nothing at all."""
    created_lead_id = None
    try:
        with transaction.atomic():
            lead_id = lead_ids.get(row.lead_key) if row.lead_key else None
            if row.lead_key and lead_id is None:
                lead = Lead.objects.create(tenant_id=tenant_id, name=row.lead_name[:200], domain=row.lead_domain)
                created_lead_id = lead_id = lead.pk
            contact = Contact.objects.create(tenant_id=tenant_id, lead_id=lead_id, **row.contact)
            ContactChannel.objects.bulk_create(channel_rows(contact))
    except (IntegrityError, ValueError) as exc:
        # The savepoint rolled back the whole row, including a lead created for it.
        logger.warning("import row %s failed: %s", row.line, exc)
        if "uniq_contact_tenant_email" in str(exc):  # imported meanwhile by a concurrent job
            outcome.errors.append({"row": row.line, "field": "email", "message": EMAIL_TAKEN})
        else:
            outcome.errors.append({"row": row.line, "field": "", "message": f"Could not be stored: {exc}"})
        return
    if created_lead_id is not None:
        lead_ids[row.lead_key] = created_lead_id
        outcome.leads_created.append(created_lead_id)
    outcome.imported += 1


def _import_rows_in_bulk(*, tenant_id: int, rows: list[_ValidRow], lead_ids: dict[tuple[str, str], int],
                         outcome: _BatchOutcome) -> None:
    """All rows in a few statements: the new leads, then the contacts, then their channels."""
    new_leads: dict[tuple[str, str], Lead] = {}
    for row in rows:
        if row.lead_key and row.lead_key not in lead_ids and row.lead_key not in new_leads:
            new_leads[row.lead_key] = Lead(tenant_id=tenant_id, name=row.lead_name[:200], domain=row.lead_domain)
    if new_leads:
        Lead.objects.bulk_create(list(new_leads.values()))
        for key, lead in new_leads.items():
            lead_ids[key] = lead.pk
            outcome.leads_created.append(lead.pk)
    contacts = [Contact(tenant_id=tenant_id, lead_id=lead_ids.get(row.lead_key) if row.lead_key else None,
                        **row.contact) for row in rows]
    # bulk_create skips Contact.save(); the emails are already normalised by contact_fields_clean.
    Contact.objects.bulk_create(contacts)
    ContactChannel.objects.bulk_create([channel for contact in contacts for channel in channel_rows(contact)])
    outcome.imported += len(contacts)


def _count_unsubscribed(*, tenant_id: int, emails: list[str], phones: list[str]) -> int:
    blocked = 0
    if emails:
        reasons = address_block_reasons(tenant_id=tenant_id, channel=Channel.EMAIL, values=emails)
        blocked += sum(1 for reason in reasons.values() if reason == "unsubscribed")
    if phones:
        reasons = address_block_reasons(tenant_id=tenant_id, channel=Channel.SMS, values=phones)
        blocked += sum(1 for reason in reasons.values() if reason == "unsubscribed")
    return blocked


def _import_batch(*, tenant_id: int, rows: list[tuple[int, dict[str, str]]],
                  seen_emails: dict[str, int]) -> _BatchOutcome:
    outcome = _BatchOutcome()
    valid = _validate_rows(rows, seen_emails=seen_emails, outcome=outcome)
    validation_errors = list(outcome.errors)
    if valid:
        try:
            with transaction.atomic():
                _import_valid_rows(tenant_id=tenant_id, rows=valid, outcome=outcome, per_row=False)
        except IntegrityError:
            # Something the checks did not foresee (e.g. a concurrent insert): retry row by row, so only
            # the offending rows fail and the rest of the batch still lands.
            logger.warning("import batch failed in bulk; retrying row by row", exc_info=True)
            outcome = _BatchOutcome(errors=validation_errors)
            _import_valid_rows(tenant_id=tenant_id, rows=valid, outcome=outcome, per_row=True)
    imported_lines = {row.line for row in valid} - {error["row"] for error in outcome.errors}
    imported = [row for row in valid if row.line in imported_lines]
    outcome.unsubscribed = _count_unsubscribed(
        tenant_id=tenant_id,
        emails=[row.contact["email"] for row in imported if row.contact.get("email")],
        phones=[row.contact["phone"] for row in imported if row.contact.get("phone")
                and not row.contact.get("email")],
    )
    outcome.errors.sort(key=lambda error: error["row"])
    return outcome



def import_job_run(*, import_job_id: int, batch_size: int = IMPORT_BATCH_SIZE) -> ImportJob | None:
    """Import a job's rows in batches; each batch commits together with the job's progress.

    Idempotent: a redelivered task resumes after the last committed batch, and a finished job is left
    alone. Every row is either fully imported (lead, contact, channels) or reported with its errors.
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=import_job_id).first()
        if job is None or job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
            return job
        job.status = ImportJob.Status.RUNNING
        job.started_at = job.started_at or clock.now()
        job.save(update_fields=["status", "started_at"])

    try:
        parsed = import_csv_parse(job.content)
    except ApplicationError as exc:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, failure=exc.message,
                                                   finished_at=clock.now())
        job.refresh_from_db()
        return job

    # Emails of rows already committed are in the database, so a resumed run still catches repeats.
    seen_emails: dict[str, int] = {}
    position = job.processed_rows
    while position < len(parsed.rows):
        batch = parsed.rows[position:position + batch_size]
        with transaction.atomic():
            locked = ImportJob.objects.select_for_update().get(pk=job.pk)
            if locked.processed_rows != position or locked.status != ImportJob.Status.RUNNING:
                return locked  # another worker has moved this job on
            outcome = _import_batch(tenant_id=locked.tenant_id, rows=batch, seen_emails=seen_emails)
            locked.processed_rows = position + len(batch)
            locked.imported_rows += outcome.imported
            locked.error_rows += len({error["row"] for error in outcome.errors})
            locked.unsubscribed_rows += outcome.unsubscribed
            locked.leads_created += len(outcome.leads_created)
            room = MAX_STORED_ERRORS - len(locked.errors)
            if room > 0:
                locked.errors = locked.errors + outcome.errors[:room]
            locked.save(update_fields=["processed_rows", "imported_rows", "error_rows", "unsubscribed_rows",
                                       "leads_created", "errors"])
            leads_enqueue_analysis(lead_ids=outcome.leads_created)
        position += len(batch)

    with transaction.atomic():
        if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
                status=ImportJob.Status.DONE, finished_at=clock.now(), total_rows=len(parsed.rows)):
            emit(tenant_id=job.tenant_id, type=EventType.IMPORT_FINISHED, data=_finished_event(job.pk))
    job.refresh_from_db()
    return job


def _finished_event(job_id: int) -> dict:
    job = ImportJob.objects.defer("content", "errors").get(pk=job_id)
    return {"import_id": job.pk, "status": job.status, "total_rows": job.total_rows,
            "imported_rows": job.imported_rows, "error_rows": job.error_rows, "leads_created": job.leads_created}


def import_jobs_requeue_stale(*, older_than: dt.timedelta, limit: int = 200) -> int:
    """Publish again the import jobs still queued long after they were created (their message was lost,
    e.g. the broker was down at commit). Safe to repeat: import_job_run resumes and never runs twice."""
    cutoff = clock.now() - older_than
    ids = list(ImportJob.objects.filter(status=ImportJob.Status.QUEUED, created_at__lt=cutoff)
               .order_by("created_at").values_list("pk", flat=True)[:limit])
    for job_id in ids:
        publish(TaskName.IMPORT_CONTACTS_CSV, args=[job_id])
    if ids:
        logger.warning("re-published %d import job(s) still queued after %s", len(ids), older_than)
    return len(ids)
