"""Campaigns (a tenant's brief), per-contact enrolments, their plans, timers and history."""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from outreach.fields import ClockDateTimeField


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELED = "canceled"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    goal = models.TextField(blank=True, help_text="What a successful outcome is, e.g. a booked demo")
    offer = models.TextField(blank=True, help_text="What we offer the contact")
    ai_instructions = models.TextField(blank=True, help_text="Tone, constraints, do's and don'ts for the AI")
    sender_identity = models.ForeignKey("messaging.EmailSenderIdentity", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    allowed_link_domains = models.JSONField(default=list, blank=True,
                                            help_text="Domains the AI may link to in its copy")
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "campaigns"
        indexes = [models.Index(fields=["tenant", "created_at"], name="campaigns_tenant_created")]

    def __str__(self) -> str:
        return self.name


class ContactCampaign(models.Model):
    """One contact's enrolment in a campaign on one channel: the running state of its plan."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (plan not written yet)"
        ACTIVE = "active"
        PAUSED = "paused"
        COMPLETED = "completed"
        STOPPED = "stopped"
        CANCELED = "canceled"
        FAILED = "failed"

    FINAL_STATUSES = (Status.COMPLETED, Status.STOPPED, Status.CANCELED, Status.FAILED)
    # Not final: the plan may still send (contacts may not be deleted while one of theirs is live).
    LIVE_STATUSES = (Status.PENDING, Status.ACTIVE, Status.PAUSED)

    # db_index=False: a composite index below (or the unique key) leads with each of these columns.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contact_campaigns",
                                 db_index=False)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="contact_campaigns",
                                db_index=False)
    channel = models.CharField(max_length=16, default="email")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    current_node_id = models.CharField(max_length=64, blank=True)
    node_visit = models.PositiveIntegerField(default=0, help_text="Increments on every node entry")
    node_entered_at = models.DateTimeField(null=True, blank=True)
    node_sent_at = models.DateTimeField(null=True, blank=True, help_text="When this node's message was sent")
    # Bit set (1 open, 2 click, 4 reply) of human engagement with this node visit's message: the synthetic
    # no_open / no_click / no_reply timers fire only while their bit is clear. Reset on every node entry.
    engagement_flags = models.PositiveSmallIntegerField(default=0)
    plan_json = models.JSONField(null=True, blank=True)
    current_plan_version = models.ForeignKey("CampaignPlanVersion", null=True, blank=True,
                                             on_delete=models.SET_NULL, related_name="+")
    stop_reason = models.CharField(max_length=100, blank=True)
    not_before = models.DateTimeField(null=True, blank=True,
                                      help_text="No send before this (e.g. an out-of-office return date)")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "contact_campaigns"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact", "channel"],
                                    name="uniq_contact_campaign_per_channel"),
            models.CheckConstraint(
                condition=~Q(status="active") | ~Q(current_node_id=""),
                name="active_contact_campaign_has_node",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="cc_tenant_status"),
            # The API's enrolment list: a tenant's newest first, cursor on (created_at, id).
            models.Index(fields=["tenant", "created_at", "id"], name="cc_tenant_created"),
            models.Index(fields=["contact", "status"], name="cc_contact_status"),
            models.Index(fields=["campaign", "status"], name="cc_campaign_status"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.campaign} [{self.status}@{self.current_node_id or '-'}]"


class CampaignPlanVersion(models.Model):
    class Source(models.TextChoices):
        AI = "ai"
        AI_REPAIRED = "ai_repaired"
        FALLBACK = "fallback"
        MANUAL = "manual"
        API = "api"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    contact_campaign = models.ForeignKey(ContactCampaign, on_delete=models.CASCADE, related_name="plan_versions")
    version = models.PositiveIntegerField()
    plan_json = models.JSONField()
    plan_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_detail = models.TextField(blank=True, help_text="E.g. why the AI plan fell back")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "campaign_plan_versions"
        constraints = [
            models.UniqueConstraint(fields=["contact_campaign", "version"], name="uniq_plan_version_number"),
            models.UniqueConstraint(fields=["contact_campaign", "plan_hash"], name="uniq_plan_version_hash"),
            models.CheckConstraint(condition=Q(version__gte=1), name="plan_version_positive"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.source})"


class ScheduledAction(models.Model):
    """A future action. The database, not Celery, holds time (see architecture rule 1)."""

    class Kind(models.TextChoices):
        SEND = "send"  # hand a queued outbound message to delivery (at an allowed time)
        TIMEOUT = "timeout"  # synthetic no_open / no_click / no_reply
        WAIT = "wait"  # a wait node's duration elapsed

    class Status(models.TextChoices):
        PENDING = "pending"
        CLAIMED = "claimed"
        DONE = "done"
        CANCELED = "canceled"
        # Kept, not dropped, while a kill switch or a pause applies; re-armed (sends re-timed) on release.
        HELD = "held"
        # A timer that kept failing past its attempt bound (logged); never a send.
        FAILED = "failed"

    # db_index=False: no query reads a tenant's actions except through sa_pending_send_tenant, and
    # sa_cc_status leads with contact_campaign_id (it also serves the cascade when an enrolment goes).
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_campaign = models.ForeignKey(ContactCampaign, on_delete=models.CASCADE,
                                         related_name="scheduled_actions", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    node_id = models.CharField(max_length=64)
    node_visit = models.PositiveIntegerField()
    event = models.CharField(max_length=32, blank=True, help_text="For timeouts: the synthetic event")
    payload = models.JSONField(default=dict, blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Unique through Meta.constraints, not unique=True: that would add a second (LIKE) index per insert.
    dedupe_key = models.CharField(max_length=255)
    # Denormalised (no FK, no index) so the dispatcher can hold sends of paused campaigns without a join.
    campaign_id = models.BigIntegerField(null=True, blank=True)
    # For sends: the outbox row this action hands to delivery (plain id: outbox rows outlive nothing here).
    outbound_message_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "scheduled_actions"
        constraints = [
            # The name Django gave the unique=True constraint: the index is kept, only its LIKE twin goes.
            models.UniqueConstraint(fields=["dedupe_key"], name="scheduled_actions_dedupe_key_key"),
        ]
        indexes = [
            # The dispatcher's hot query: due pending rows in due order.
            models.Index(fields=["due_at"], name="sa_pending_due", condition=Q(status="pending")),
            # Lease recovery: claimed rows whose worker died.
            models.Index(fields=["claimed_at"], name="sa_claimed_lease", condition=Q(status="claimed")),
            models.Index(fields=["contact_campaign", "status"], name="sa_cc_status"),
            # Release of held rows once their kill switch is off.
            models.Index(fields=["id"], name="sa_held", condition=Q(status="held")),
            # The dispatcher's fair share (issue 19): each tenant's due sends, probed tenant by tenant.
            models.Index(fields=["tenant", "due_at"], name="sa_pending_send_tenant",
                         condition=Q(status="pending", kind="send")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.node_id}#{self.node_visit} {self.event} @ {self.due_at:%Y-%m-%d %H:%M}"


class CampaignTransition(models.Model):
    """Append-only history of a contact campaign's moves."""

    # db_index=False: ct_cc_created leads with contact_campaign_id; nothing reads a tenant's transitions.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_campaign = models.ForeignKey(ContactCampaign, on_delete=models.CASCADE, related_name="transitions",
                                         db_index=False)
    from_node_id = models.CharField(max_length=64, blank=True)
    to_node_id = models.CharField(max_length=64, blank=True)
    event = models.CharField(max_length=32)
    node_visit = models.PositiveIntegerField(default=0)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        # Partitioned by month of created_at (campaigns/0007; the database's primary key is (id, created_at));
        # retention drops whole months (outreach.retention, docs/storage.md).
        db_table = "campaign_transitions"
        indexes = [models.Index(fields=["contact_campaign", "created_at"], name="ct_cc_created")]

    def __str__(self) -> str:
        return f"{self.from_node_id or '∅'} -[{self.event}]-> {self.to_node_id or '∅'}"
