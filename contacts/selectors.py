"""Reads for leads, contacts and imports (always tenant-scoped)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from contacts.extension_points import address_block_reasons
from contacts.models import Channel, Contact, ImportJob, Lead
from outreach.addresses import InvalidAddress, normalise_email
from outreach.tenancy.models import Tenant


def lead_list(*, tenant: Tenant, domain: str | None = None, q: str | None = None,
              analysis_status: str | None = None) -> QuerySet[Lead]:
    queryset = Lead.objects.filter(tenant=tenant)
    if domain:
        queryset = queryset.filter(domain=domain.strip().lower())
    if analysis_status:
        queryset = queryset.filter(analysis_status=analysis_status)
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(domain__icontains=q))
    return queryset


def contact_list(*, tenant: Tenant, lead_id: int | None = None, email: str | None = None,
                 q: str | None = None) -> QuerySet[Contact]:
    queryset = Contact.objects.filter(tenant=tenant)
    if lead_id is not None:
        queryset = queryset.filter(lead_id=lead_id)
    if email:
        try:
            queryset = queryset.filter(email=normalise_email(email))
        except InvalidAddress:
            queryset = queryset.none()
    if q:
        queryset = queryset.filter(
            Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q) | Q(title__icontains=q)
        )
    return queryset


def contacts_block_reasons(*, tenant_id: int, contacts: Iterable[Contact]) -> dict[int, str]:
    """Why each contact may not be written to (opt-out or suppression), by contact id; free ones absent.

    Bulk: messaging's checks (address_block_reasons) run once per channel for the whole page, never per contact.
    """
    contacts = list(contacts)
    emails = [c.email for c in contacts if c.email]
    phones = [c.phone for c in contacts if c.phone]
    by_email = address_block_reasons(tenant_id=tenant_id, channel=Channel.EMAIL, values=emails) if emails else {}
    by_phone = address_block_reasons(tenant_id=tenant_id, channel=Channel.SMS, values=phones) if phones else {}
    reasons: dict[int, str] = {}
    for contact in contacts:
        # An opt-out on any channel wins over a suppression: it is the person's own choice.
        found = [r for r in (by_email.get(contact.email), by_phone.get(contact.phone)) if r]
        if found:
            reasons[contact.pk] = "unsubscribed" if "unsubscribed" in found else found[0]
    return reasons


def import_job_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[ImportJob]:
    queryset = ImportJob.objects.filter(tenant=tenant)
    if status:
        queryset = queryset.filter(status=status)
    return queryset
