"""Writes for leads, contacts and CSV imports.

Addresses are normalised here (lower-cased email, E.164 phone) with the same functions the opt-out
tables are keyed by (messaging.compliance), so a contact's channel row always matches its opt-out row.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import available_timezones

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from contacts.models import Channel, Contact, ContactChannel, ImportJob, Lead
from messaging.compliance import InvalidAddress, normalise_email, normalise_phone, send_block_reasons
from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant

logger = logging.getLogger(__name__)

ANALYSE_LEADS_TASK = "lead_analysis.analyse_leads"
IMPORT_CONTACTS_TASK = "lead_analysis.import_contacts_csv"
# Lead ids per analysis message: batches, not one task per lead (see the ceilings table).
ANALYSE_BATCH_SIZE = 100
IMPORT_BATCH_SIZE = 500

CONTACT_FIELDS = ("first_name", "last_name", "title", "email", "phone", "timezone", "language")
_FIELD_MAX_LENGTH = {"first_name": 100, "last_name": 100, "title": 200, "email": 254, "phone": 20,
                     "timezone": 64, "language": 16}
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")

NONFINAL_ENROLMENT_STATUSES = ("pending", "active", "paused")


def import_max_bytes() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_MAX_BYTES", 20 * 1024 * 1024))


def _max_import_rows() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_MAX_ROWS", 100_000))


def _send_task(name: str, args: list) -> None:
    # Imported lazily: the Celery app autodiscovers every app's tasks at import time.
    from outreach.celery import app

    app.send_task(name, args=args)


def _send_task_after_commit(name: str, args: list) -> None:
    """Publish once the rows are committed. robust: a broker outage is logged, never turned into an error
    for a request whose rows are already stored; the stale-work sweeps publish them again."""
    transaction.on_commit(lambda: _send_task(name, args), robust=True)


def leads_enqueue_analysis(*, lead_ids: list[int]) -> None:
    """Ask the AI to analyse new leads, after commit, in batches (a worker never sees a rolled-back lead)."""
    for start in range(0, len(lead_ids), ANALYSE_BATCH_SIZE):
        batch = list(lead_ids[start:start + ANALYSE_BATCH_SIZE])
        _send_task_after_commit(ANALYSE_LEADS_TASK, [batch])


# --------------------------------------------------------------------------- field cleaning


def clean_domain(value: str) -> str:
    """A bare lower-cased domain from what users type: "https://www.Acme.com/about" -> "acme.com"."""
    domain = (value or "").strip().lower()
    if not domain:
        return ""
    domain = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain).split("/", 1)[0].split("?", 1)[0]
    domain = domain.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    if domain.startswith("www."):
        domain = domain[4:]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ApplicationError(f"{value!r} is not a valid domain.", field="domain") from exc
    if not _DOMAIN_RE.match(domain):
        raise ApplicationError(f"{value!r} is not a valid domain.", field="domain")
    return domain


def contact_fields_clean(values: dict[str, Any], *, require_address: bool = True) -> tuple[dict[str, str],
                                                                                          dict[str, str]]:
    """Normalise a contact's fields; returns (cleaned, problems by field). Pure: no queries.

    Used by the API (problems become a 400 naming the field) and by the CSV import (per-row errors).
    """
    cleaned: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        if name not in values:
            continue
        raw = values[name]
        text = "" if raw is None else str(raw).strip()
        if "\x00" in text:
            problems[name] = "Must not contain NUL characters."
            continue
        if name == "email" and text:
            try:
                text = normalise_email(text)
            except InvalidAddress as exc:
                problems[name] = exc.message
                continue
        elif name == "phone" and text:
            try:
                text = normalise_phone(text)
            except InvalidAddress as exc:
                problems[name] = exc.message
                continue
        elif name == "timezone" and text and text not in _iana_zones():
            problems[name] = f"{text!r} is not an IANA time zone (e.g. Europe/Berlin)."
            continue
        elif name == "language" and text and not _LANGUAGE_RE.match(text):
            problems[name] = f"{text!r} is not a language tag (e.g. en, de, pt-BR)."
            continue
        if len(text) > _FIELD_MAX_LENGTH[name]:
            problems[name] = f"At most {_FIELD_MAX_LENGTH[name]} characters."
            continue
        cleaned[name] = text
    if require_address and "email" not in problems and "phone" not in problems:
        if not cleaned.get("email") and not cleaned.get("phone"):
            problems["email"] = "A contact needs an email address or a phone number."
    return cleaned, problems


_ZONES: frozenset[str] | None = None


def _iana_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def _raise_problems(problems: dict[str, str]) -> None:
    if problems:
        name, message = next(iter(problems.items()))
        raise ApplicationError(message, field=name, extra={"errors": problems})


# --------------------------------------------------------------------------- leads


def lead_create(*, tenant: Tenant, name: str = "", domain: str = "", website_text: str = "", notes: str = "",
                analyse: bool = True) -> Lead:
    domain = clean_domain(domain)
    name = (name or "").strip() or domain
    if not name:
        raise ApplicationError("A lead needs a name or a domain.", field="name")
    lead = Lead.objects.create(tenant=tenant, name=name[:200], domain=domain, website_text=website_text,
                               notes=notes)
    if analyse:
        leads_enqueue_analysis(lead_ids=[lead.pk])
    return lead


def lead_update(*, lead: Lead, data: dict[str, Any]) -> Lead:
    allowed = {"name", "domain", "website_text", "notes"}
    changed = []
    for key, value in data.items():
        if key not in allowed:
            continue
        if key == "domain":
            value = clean_domain(value)
        if key == "name":
            value = (value or "").strip()
            if not value:
                raise ApplicationError("A lead needs a name.", field="name")
        setattr(lead, key, value)
        changed.append(key)
    if changed:
        lead.save(update_fields=[*changed, "updated_at"])
    return lead


def lead_delete(*, lead: Lead) -> None:
    """Deleting a lead deletes its contacts; refused while one of them is still in a running campaign."""
    from campaigns.models import ContactCampaign

    running = ContactCampaign.objects.filter(tenant_id=lead.tenant_id, contact__lead=lead,
                                             status__in=NONFINAL_ENROLMENT_STATUSES).exists()
    if running:
        raise ApplicationError("A contact of this lead is still in a running campaign; cancel it first.",
                               status_code=409)
    lead.delete()


# --------------------------------------------------------------------------- contacts


def _channel_rows(contact: Contact) -> list[ContactChannel]:
    rows = []
    if contact.email:
        rows.append(ContactChannel(tenant_id=contact.tenant_id, contact=contact, channel=Channel.EMAIL,
                                   value=contact.email, is_primary=True))
    if contact.phone:
        rows.append(ContactChannel(tenant_id=contact.tenant_id, contact=contact, channel=Channel.SMS,
                                   value=contact.phone, is_primary=True))
    return rows


EMAIL_TAKEN = "A contact with this email address already exists."


@contextmanager
def _email_uniqueness_as_field_error() -> Iterator[None]:
    """The database constraint catches what the check before it cannot: two requests racing."""
    try:
        yield
    except IntegrityError as exc:
        if "uniq_contact_tenant_email" in str(exc):
            raise ApplicationError(EMAIL_TAKEN, field="email") from exc
        raise


def _email_taken(*, tenant_id: int, email: str, exclude_pk: int | None = None) -> bool:
    if not email:
        return False
    queryset = Contact.objects.filter(tenant_id=tenant_id, email=email)
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset.exists()


def _check_lead(*, tenant_id: int, lead: Lead | None) -> None:
    if lead is not None and lead.tenant_id != tenant_id:
        # Same message as an unknown id: never confirm another tenant's lead exists.
        raise ApplicationError("Unknown lead.", field="lead")


def contact_create(*, tenant: Tenant, lead: Lead | None = None, first_name: str = "", last_name: str = "",
                   title: str = "", email: str = "", phone: str = "", timezone: str = "",
                   language: str = "") -> Contact:
    """Create a contact with a normalised email/phone and its channel rows.

    One contact per email address in a tenant: a second one would get its own campaign and the same
    person would be written to twice.
    """
    _check_lead(tenant_id=tenant.pk, lead=lead)
    cleaned, problems = contact_fields_clean(
        {"first_name": first_name, "last_name": last_name, "title": title, "email": email, "phone": phone,
         "timezone": timezone, "language": language}
    )
    _raise_problems(problems)
    with _email_uniqueness_as_field_error(), transaction.atomic():
        if _email_taken(tenant_id=tenant.pk, email=cleaned["email"]):
            raise ApplicationError(EMAIL_TAKEN, field="email")
        contact = Contact.objects.create(tenant=tenant, lead=lead, **cleaned)
        ContactChannel.objects.bulk_create(_channel_rows(contact))
    return contact


def contact_update(*, contact: Contact, data: dict[str, Any]) -> Contact:
    """Update a contact's fields; a changed email or phone replaces its channel row."""
    update_fields: list[str] = []
    if "lead" in data:
        _check_lead(tenant_id=contact.tenant_id, lead=data["lead"])
        contact.lead = data["lead"]
        update_fields.append("lead")
    values = {name: data[name] for name in CONTACT_FIELDS if name in data}
    merged = {name: getattr(contact, name) for name in ("email", "phone")} | values
    cleaned, problems = contact_fields_clean(merged)
    _raise_problems(problems)
    with _email_uniqueness_as_field_error(), transaction.atomic():
        if "email" in values and _email_taken(tenant_id=contact.tenant_id, email=cleaned["email"],
                                              exclude_pk=contact.pk):
            raise ApplicationError(EMAIL_TAKEN, field="email")
        old = {"email": contact.email, "phone": contact.phone}
        for name in values:
            setattr(contact, name, cleaned[name])
            update_fields.append(name)
        if not update_fields:
            return contact
        contact.save(update_fields=[*update_fields, "updated_at"])
        for name, channel in (("email", Channel.EMAIL), ("phone", Channel.SMS)):
            new_value = getattr(contact, name)
            if new_value == old[name]:
                continue
            ContactChannel.objects.filter(contact=contact, channel=channel, value=old[name]).delete()
            if new_value:
                ContactChannel.objects.get_or_create(
                    contact=contact, channel=channel, value=new_value,
                    defaults={"tenant_id": contact.tenant_id, "is_primary": True},
                )
    return contact


def contact_delete(*, contact: Contact) -> None:
    """Refused while the contact is in a running campaign (cancel first, so nothing is left half-sent).

    Opt-outs are keyed by address, so deleting a contact never forgets that it unsubscribed.
    """
    from campaigns.models import ContactCampaign

    if ContactCampaign.objects.filter(contact=contact, status__in=NONFINAL_ENROLMENT_STATUSES).exists():
        raise ApplicationError("This contact is still in a running campaign; cancel it first.", status_code=409)
    contact.delete()


# --------------------------------------------------------------------------- CSV import

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
    _send_task_after_commit(IMPORT_CONTACTS_TASK, [job.pk])
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
            lead_domain = clean_domain(values.get("domain") or "")
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
            created_lead_id = None
            try:
                with transaction.atomic():
                    lead_id = lead_ids.get(row.lead_key) if row.lead_key else None
                    if row.lead_key and lead_id is None:
                        lead = Lead.objects.create(tenant_id=tenant_id, name=row.lead_name[:200],
                                                   domain=row.lead_domain)
                        created_lead_id = lead_id = lead.pk
                    contact = Contact.objects.create(tenant_id=tenant_id, lead_id=lead_id, **row.contact)
                    ContactChannel.objects.bulk_create(_channel_rows(contact))
            except (IntegrityError, ValueError) as exc:
                # The savepoint rolled back the whole row, including a lead created for it.
                logger.warning("import row %s failed: %s", row.line, exc)
                if "uniq_contact_tenant_email" in str(exc):  # imported meanwhile by a concurrent job
                    outcome.errors.append({"row": row.line, "field": "email", "message": EMAIL_TAKEN})
                else:
                    outcome.errors.append({"row": row.line, "field": "", "message": f"Could not be stored: {exc}"})
                continue
            if created_lead_id is not None:
                lead_ids[row.lead_key] = created_lead_id
                outcome.leads_created.append(created_lead_id)
            outcome.imported += 1
        return

    new_leads: dict[tuple[str, str], Lead] = {}
    for row in todo:
        if row.lead_key and row.lead_key not in lead_ids and row.lead_key not in new_leads:
            new_leads[row.lead_key] = Lead(tenant_id=tenant_id, name=row.lead_name[:200], domain=row.lead_domain)
    if new_leads:
        Lead.objects.bulk_create(list(new_leads.values()))
        for key, lead in new_leads.items():
            lead_ids[key] = lead.pk
            outcome.leads_created.append(lead.pk)
    contacts = [Contact(tenant_id=tenant_id, lead_id=lead_ids.get(row.lead_key) if row.lead_key else None,
                        **row.contact) for row in todo]
    # bulk_create skips Contact.save(); the emails are already normalised by contact_fields_clean.
    Contact.objects.bulk_create(contacts)
    ContactChannel.objects.bulk_create([channel for contact in contacts for channel in _channel_rows(contact)])
    outcome.imported += len(contacts)


def _count_unsubscribed(*, tenant_id: int, emails: list[str], phones: list[str]) -> int:
    blocked = 0
    if emails:
        reasons = send_block_reasons(tenant_id=tenant_id, channel=Channel.EMAIL, values=emails)
        blocked += sum(1 for reason in reasons.values() if reason == "unsubscribed")
    if phones:
        reasons = send_block_reasons(tenant_id=tenant_id, channel=Channel.SMS, values=phones)
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


MAX_STORED_ERRORS = 10_000


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

    ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
        status=ImportJob.Status.DONE, finished_at=clock.now(), total_rows=len(parsed.rows)
    )
    job.refresh_from_db()
    return job


def import_jobs_requeue_stale(*, older_than: dt.timedelta, limit: int = 200) -> int:
    """Publish again the import jobs still queued long after they were created (their message was lost,
    e.g. the broker was down at commit). Safe to repeat: import_job_run resumes and never runs twice."""
    cutoff = clock.now() - older_than
    ids = list(ImportJob.objects.filter(status=ImportJob.Status.QUEUED, created_at__lt=cutoff)
               .order_by("created_at").values_list("pk", flat=True)[:limit])
    for job_id in ids:
        _send_task(IMPORT_CONTACTS_TASK, [job_id])
    if ids:
        logger.warning("re-published %d import job(s) still queued after %s", len(ids), older_than)
    return len(ids)
