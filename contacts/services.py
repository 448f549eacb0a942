"""Writes for leads and contacts (the CSV import pipeline is contacts.imports).

Addresses are normalised with outreach.addresses, the same functions the opt-out tables are keyed by, so a
contact's channel row always matches its opt-out row; time zones are checked by outreach.timezones, the
rule the plan language applies too.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, transaction

from contacts.extension_points import contacts_in_running_campaigns
from contacts.models import Channel, Contact, ContactChannel, Lead
from outreach.addresses import InvalidAddress, normalise_email, normalise_optional_domain, normalise_phone
from outreach.errors import ApplicationError
from outreach.publishing import publish_after_commit
from outreach.queues import TaskName
from outreach.tenancy.models import Tenant
from outreach.timezones import timezone_problem

# Lead ids per analysis message: batches, not one task per lead (see the ceilings table).
ANALYSE_BATCH_SIZE = 100

CONTACT_FIELDS = ("first_name", "last_name", "title", "email", "phone", "timezone", "language")
_FIELD_MAX_LENGTH = {"first_name": 100, "last_name": 100, "title": 200, "email": 254, "phone": 20,
                     "timezone": 64, "language": 16}
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def leads_enqueue_analysis(*, lead_ids: list[int]) -> None:
    """Ask the AI to analyse new leads, after commit, in batches (a worker never sees a rolled-back lead)."""
    for start in range(0, len(lead_ids), ANALYSE_BATCH_SIZE):
        batch = list(lead_ids[start:start + ANALYSE_BATCH_SIZE])
        publish_after_commit(TaskName.ANALYSE_LEADS, args=[batch])


# --------------------------------------------------------------------------- field cleaning


def _clean_email(text: str) -> str:
    return normalise_email(text)


def _clean_phone(text: str) -> str:
    return normalise_phone(text)


def _clean_timezone(text: str) -> str:
    problem = timezone_problem(text)
    if problem:
        raise InvalidAddress(f"{problem}.", field="timezone")
    return text


def _clean_language(text: str) -> str:
    if not _LANGUAGE_RE.match(text):
        raise InvalidAddress(f"{text!r} is not a language tag (e.g. en, de, pt-BR).", field="language")
    return text


# Fields with a format of their own; each cleaner raises InvalidAddress (an ApplicationError) with its message.
_FIELD_CLEANERS: dict[str, Callable[[str], str]] = {
    "email": _clean_email, "phone": _clean_phone, "timezone": _clean_timezone, "language": _clean_language,
}


def _field_clean(name: str, raw: Any) -> str:
    """One field's cleaned text; raises ApplicationError with the message for the field."""
    text = "" if raw is None else str(raw).strip()
    if "\x00" in text:
        raise ApplicationError("Must not contain NUL characters.", field=name)
    cleaner = _FIELD_CLEANERS.get(name)
    if cleaner is not None and text:
        text = cleaner(text)
    if len(text) > _FIELD_MAX_LENGTH[name]:
        raise ApplicationError(f"At most {_FIELD_MAX_LENGTH[name]} characters.", field=name)
    return text


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
        try:
            cleaned[name] = _field_clean(name, values[name])
        except ApplicationError as exc:
            problems[name] = exc.message
    address_problem = "email" in problems or "phone" in problems
    if require_address and not address_problem and not cleaned.get("email") and not cleaned.get("phone"):
        problems["email"] = "A contact needs an email address or a phone number."
    return cleaned, problems


def _raise_problems(problems: dict[str, str]) -> None:
    if problems:
        name, message = next(iter(problems.items()))
        raise ApplicationError(message, field=name, extra={"errors": problems})


# --------------------------------------------------------------------------- leads


def lead_create(*, tenant: Tenant, name: str = "", domain: str = "", website_text: str = "", notes: str = "",
                analyse: bool = True) -> Lead:
    domain = normalise_optional_domain(domain)
    name = (name or "").strip() or domain
    if not name:
        raise ApplicationError("A lead needs a name or a domain.", field="name")
    _refuse_duplicate_domain(tenant_id=tenant.pk, domain=domain)
    lead = Lead.objects.create(tenant=tenant, name=name[:200], domain=domain, website_text=website_text,
                               notes=notes)
    if analyse:
        leads_enqueue_analysis(lead_ids=[lead.pk])
    return lead


def _refuse_duplicate_domain(*, tenant_id: int, domain: str, other_than: int | None = None) -> None:
    """A 409 naming the lead that already has this domain (uniq_lead_tenant_domain is the backstop)."""
    if not domain:
        return
    existing = Lead.objects.filter(tenant_id=tenant_id, domain=domain).exclude(pk=other_than).only("id", "name")
    found = existing.first()
    if found is not None:
        raise ApplicationError(f"Lead {found.pk} ({found.name}) already has the domain {domain}.", field="domain",
                               status_code=409, code="duplicate_domain", extra={"existing_lead_id": found.pk})


def lead_update(*, lead: Lead, data: dict[str, Any]) -> Lead:
    allowed = {"name", "domain", "website_text", "notes"}
    changed = []
    for key, value in data.items():
        if key not in allowed:
            continue
        if key == "domain":
            value = normalise_optional_domain(value)
            _refuse_duplicate_domain(tenant_id=lead.tenant_id, domain=value, other_than=lead.pk)
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
    if contacts_in_running_campaigns(tenant_id=lead.tenant_id, contact_ids=None, lead_id=lead.pk):
        raise ApplicationError("A contact of this lead is still in a running campaign; cancel it first.",
                               status_code=409)
    lead.delete()


# --------------------------------------------------------------------------- contacts


def channel_rows(contact: Contact) -> list[ContactChannel]:
    """The primary channel rows of a contact's email and phone (not saved)."""
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
        ContactChannel.objects.bulk_create(channel_rows(contact))
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
    if contacts_in_running_campaigns(tenant_id=contact.tenant_id, contact_ids=[contact.pk], lead_id=None):
        raise ApplicationError("This contact is still in a running campaign; cancel it first.", status_code=409)
    contact.delete()
