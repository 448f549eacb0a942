from django.db import models

from outreach.fields import ClockDateTimeField


class AICall(models.Model):
    """One call to the language model: what it was for, tokens and estimated cost."""

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        RATE_LIMITED = "rate_limited"

    # db_index=False: ai_calls_tenant_created leads with tenant_id.
    tenant = models.ForeignKey("tenancy.Tenant", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="ai_calls", db_index=False)
    purpose = models.CharField(max_length=50)  # lead_analysis, plan, plan_repair, reply_classification
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OK)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        # Partitioned by month of created_at (ai/0005; the database's primary key is (id, created_at));
        # retention drops whole months (outreach.retention, docs/storage.md).
        db_table = "ai_calls"
        verbose_name = "AI call"
        verbose_name_plural = "AI calls"
        indexes = [models.Index(fields=["tenant", "created_at"], name="ai_calls_tenant_created")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.model} {self.status}"


class AITenantMonthSpend(models.Model):
    """A tenant's AI spend in one calendar month (UTC), kept by ai_call_record in the call's own statement.

    The budget check runs before every model call; reading one row here instead of summing a month of
    ai_calls keeps it one index lookup at any volume, and the row outlives the calls' retention.
    """

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="ai_month_spends",
                               db_index=False)
    month = models.DateField(help_text="First day of the calendar month (UTC).")
    spend_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "ai_tenant_month_spend"
        verbose_name = "AI spend by month"
        verbose_name_plural = "AI spend by month"
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="uniq_ai_spend_tenant_month")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m}: {self.spend_usd} USD"


class AIBudgetAlert(models.Model):
    """The one alert a tenant's admins get in a month when its AI spend reaches the monthly budget."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="ai_budget_alerts")
    month = models.DateField(help_text="First day of the calendar month (UTC).")
    spend_usd = models.DecimalField(max_digits=12, decimal_places=6)
    budget_usd = models.DecimalField(max_digits=12, decimal_places=2)
    recipients = models.TextField(blank=True, help_text="Addresses the alert was mailed to, one a line.")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ai_budget_alerts"
        verbose_name = "AI budget alert"
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="uniq_ai_budget_alert_month")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m}: {self.spend_usd} of {self.budget_usd} USD"
