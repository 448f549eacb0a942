"""Leads (companies), their contacts, and the channels we can reach each contact on."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from outreach.fields import ClockDateTimeField


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Lead(models.Model):
    class AnalysisStatus(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="leads")
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=253, blank=True)
    website_text = models.TextField(blank=True, help_text="Website text or notes the user gave")
    notes = models.TextField(blank=True)
    analysis = models.JSONField(null=True, blank=True, help_text="AI summary: business, pains, angles, fit")
    analysis_status = models.CharField(max_length=16, choices=AnalysisStatus.choices,
                                       default=AnalysisStatus.PENDING)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "leads"
        # One lead per company domain in a tenant: the CSV import matches leads by domain, so a second
        # lead with the same domain would split a company's contacts. Leads without a domain are free.
        constraints = [models.UniqueConstraint(fields=["tenant", "domain"], name="uniq_lead_tenant_domain",
                                               condition=~models.Q(domain=""))]
        indexes = [
            models.Index(fields=["tenant", "domain"], name="leads_tenant_domain"),
            models.Index(fields=["tenant", "created_at"], name="leads_tenant_created"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="contacts")
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="contacts")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True, help_text="Lower-cased on save")
    phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone, e.g. Europe/Berlin")
    language = models.CharField(max_length=16, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "contacts"
        constraints = [
            # One contact per address in a tenant: a second one would get its own enrolment and the same
            # person would be written to twice. Also the index behind lookups by email.
            models.UniqueConstraint(fields=["tenant", "email"], condition=~models.Q(email=""),
                                    name="uniq_contact_tenant_email"),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="contacts_tenant_created"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"contact {self.pk}"

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def save(self, *args, **kwargs):
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)


class ContactChannel(models.Model):
    """An address a contact can be reached on (email, phone), normalised."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="channels")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    value = models.CharField(max_length=254, help_text="Lower-cased email or E.164 phone")
    is_primary = models.BooleanField(default=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "contact_channels"
        constraints = [
            models.UniqueConstraint(fields=["contact", "channel", "value"], name="uniq_contact_channel_value"),
        ]
        indexes = [models.Index(fields=["tenant", "channel", "value"], name="contact_channels_lookup")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.value}"


class EmailValidationResult(models.Model):
    """SendGrid Email Address Validation verdict for an address (per tenant)."""

    class Verdict(models.TextChoices):
        VALID = "Valid"
        RISKY = "Risky"
        INVALID = "Invalid"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    email = models.CharField(max_length=254)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    score = models.FloatField(default=0)
    suggestion = models.CharField(max_length=254, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    validated_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "email_validation_results"
        constraints = [models.UniqueConstraint(fields=["tenant", "email"], name="uniq_validation_tenant_email")]

    def __str__(self) -> str:
        return f"{self.email}: {self.verdict}"


class ImportJob(models.Model):
    """A CSV upload of leads and contacts, imported asynchronously, with a per-row error report."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="import_jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    filename = models.CharField(max_length=255, blank=True)
    content = models.TextField(help_text="The uploaded CSV text (decoded UTF-8)")
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(
        default=0, help_text="Data rows handled so far, committed with each batch (a retry resumes here)"
    )
    imported_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    unsubscribed_rows = models.PositiveIntegerField(default=0, help_text="Imported, but the address opted out")
    leads_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True,
                              help_text='Per-row problems: [{"row": 3, "field": "email", "message": "..."}]')
    failure = models.TextField(blank=True, help_text="Why the whole job failed, if it did")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    actor_label = models.CharField(max_length=200, blank=True, help_text="Username or API key prefix")
    created_at = ClockDateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "import_jobs"
        indexes = [models.Index(fields=["tenant", "created_at"], name="import_jobs_tenant_created")]

    def __str__(self) -> str:
        return f"import {self.filename or self.pk} [{self.status}]"
