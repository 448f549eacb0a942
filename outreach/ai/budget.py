"""Per-tenant AI spend cap per calendar month (UTC), from the AICall log's estimated costs.

`budget_refusal(tenant_id=...)` is asked before every model call: None while the tenant is under its
budget (or has none), else the reason, and the first refusal of a month records one AIBudgetAlert and
mails the tenant's admins and owners. The callers already degrade on an AIError (the built-in planner
writes plans, the deterministic analysis and the rule classifier answer), so the cap needs nothing else.
The budget: settings.AI_TENANT_MONTHLY_BUDGET_USD, or "monthly_budget_usd" in AI_TENANT_CAPS for one tenant;
0 means no cap. The spend is one row of ai_tenant_month_spend, which ai_call_record adds each call to: the
check costs one index lookup however many calls the month holds.
"""
from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from outreach import clock
from outreach.ai.models import AIBudgetAlert, AITenantMonthSpend
from outreach.tenancy.models import Role, TenantMembership

logger = logging.getLogger(__name__)

_ALERTED_ROLES = (Role.ADMIN, Role.OWNER)


def month_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tenant_monthly_budget_usd(tenant_id: int) -> Decimal | None:
    """The tenant's monthly budget in USD; None when it has no cap."""
    override = settings.AI_TENANT_CAPS.get(tenant_id, {})
    value = Decimal(str(override.get("monthly_budget_usd", settings.AI_TENANT_MONTHLY_BUDGET_USD)))
    return value if value > 0 else None


def tenant_spend_this_month_usd(tenant_id: int, *, now: dt.datetime | None = None) -> Decimal:
    month = month_start(now or clock.now()).date()
    spend = AITenantMonthSpend.objects.filter(tenant_id=tenant_id, month=month).values_list("spend_usd", flat=True)
    return next(iter(spend), Decimal("0"))


def _admin_addresses(tenant_id: int) -> list[str]:
    return sorted({email for email in TenantMembership.objects.filter(
        tenant_id=tenant_id, role__in=_ALERTED_ROLES).values_list("user__email", flat=True) if email})


def _mail_alert(alert: AIBudgetAlert) -> None:
    if not alert.recipients:
        return
    try:
        send_mail(
            subject=f"AI budget reached for {alert.month:%B %Y}",
            message=(f"Your team's AI spend this month is {alert.spend_usd:.2f} USD, at its budget of "
                     f"{alert.budget_usd:.2f} USD. Until the month ends, plans are written by the built-in "
                     "planner and replies are read by the rules. Raise the budget to turn the AI back on."),
            from_email=None, recipient_list=alert.recipients.splitlines(), fail_silently=False)
    except Exception:  # noqa: BLE001 - the alert row stays: the admin shows it even if mail is down
        logger.exception("AI budget alert %s: mail failed", alert.pk)


def _alert_once(tenant_id: int, *, spend: Decimal, budget: Decimal, now: dt.datetime) -> None:
    alert, created = AIBudgetAlert.objects.get_or_create(
        tenant_id=tenant_id, month=month_start(now).date(),
        defaults={"spend_usd": spend, "budget_usd": budget, "recipients": "\n".join(_admin_addresses(tenant_id))})
    if created:
        logger.warning("tenant %s reached its AI budget (%s of %s USD): built-in components until %s",
                       tenant_id, spend, budget, alert.month)
        transaction.on_commit(lambda: _mail_alert(alert))


def budget_refusal(*, tenant_id: int | None) -> str | None:
    """Why this tenant may not call the model now (its monthly budget is spent), or None."""
    if tenant_id is None:
        return None
    budget = tenant_monthly_budget_usd(tenant_id)
    if budget is None:
        return None
    now = clock.now()
    spend = tenant_spend_this_month_usd(tenant_id, now=now)
    if spend < budget:
        return None
    _alert_once(tenant_id, spend=spend, budget=budget, now=now)
    return f"the tenant's AI budget for {now:%B %Y} is spent ({spend:.2f} of {budget:.2f} USD)"
