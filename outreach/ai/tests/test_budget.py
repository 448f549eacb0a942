"""The per-tenant monthly AI budget: at the cap no call goes out, the admins get one alert a month."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from outreach import clock
from outreach.ai.budget import budget_refusal, month_start, tenant_spend_this_month_usd
from outreach.ai.client import AIError, complete_json
from outreach.ai.models import AIBudgetAlert, AICall, AITenantMonthSpend
from outreach.ai.services import ai_call_record
from outreach.tenancy.models import Role
from outreach.tenancy.tests.factories import MembershipFactory
from simulators.openai_stub.server import chat_json

pytestmark = pytest.mark.django_db


def _call(tenant):
    return complete_json(tenant=tenant, purpose="test", messages=[{"role": "user", "content": "hi"}],
                         schema={"type": "object"}, schema_name="answer")


def _spent(tenant, usd: str) -> AICall:
    return ai_call_record(tenant_id=tenant.pk, purpose="plan", model="gpt-4o-mini", status=AICall.Status.OK,
                          cost_usd=Decimal(usd))


def test_under_the_budget_calls_go_out(stub, tenant, settings):
    settings.AI_TENANT_MONTHLY_BUDGET_USD = 5.0
    _spent(tenant, "4.99")
    stub.enqueue(chat_json({"ok": True}))
    assert _call(tenant).data == {"ok": True}
    assert len(stub.requests) == 1


def test_at_the_budget_nothing_is_sent_and_the_admins_get_one_alert(stub, tenant, settings,
                                                                    django_capture_on_commit_callbacks):
    settings.AI_TENANT_MONTHLY_BUDGET_USD = 5.0
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN)
    owner = MembershipFactory(tenant=tenant, role=Role.OWNER)
    MembershipFactory(tenant=tenant, role=Role.MEMBER)
    _spent(tenant, "3.00")
    _spent(tenant, "2.00")

    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(AIError) as info:
            _call(tenant)
        assert info.value.kind == "budget" and "5.00 of 5.00 USD" in str(info.value)

    assert stub.requests == []
    alert = AIBudgetAlert.objects.get(tenant=tenant)
    assert (alert.spend_usd, alert.budget_usd) == (Decimal("5"), Decimal("5"))
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted([admin.user.email, owner.user.email])
    assert "built-in planner" in mail.outbox[0].body


def test_last_months_spend_does_not_count_and_a_tenant_override_wins(tenant, settings, clean_ai_redis):
    settings.AI_TENANT_MONTHLY_BUDGET_USD = 5.0
    last_month = month_start(month_start(clock.now()) - dt.timedelta(days=1)).date()
    AITenantMonthSpend.objects.create(tenant=tenant, month=last_month, spend_usd=Decimal("50.00"), calls=1)
    assert tenant_spend_this_month_usd(tenant.pk) == Decimal("0")
    assert budget_refusal(tenant_id=tenant.pk) is None
    _spent(tenant, "6.00")
    assert budget_refusal(tenant_id=tenant.pk) is not None
    settings.AI_TENANT_CAPS = {tenant.pk: {"monthly_budget_usd": 100}}
    assert budget_refusal(tenant_id=tenant.pk) is None
    settings.AI_TENANT_CAPS, settings.AI_TENANT_MONTHLY_BUDGET_USD = {}, 0.0
    assert budget_refusal(tenant_id=tenant.pk) is None  # 0: no cap


def test_plans_at_the_cap_come_from_the_built_in_planner(stub, tenant, settings):
    from campaigns.generation import contact_campaign_generate_plan
    from campaigns.tests.factories import ContactCampaignFactory
    from contacts.tests.factories import ContactFactory, LeadFactory

    settings.AI_TENANT_MONTHLY_BUDGET_USD = 1.0
    _spent(tenant, "1.00")
    lead = LeadFactory(tenant=tenant, analysis={"summary": "x"}, analysis_status="done")
    cc = ContactCampaignFactory(tenant=tenant, contact=ContactFactory(tenant=tenant, lead=lead, first_name="Ann"))

    version = contact_campaign_generate_plan(contact_campaign=cc)

    assert version.source == "fallback" and "AI call failed (budget)" in version.source_detail
    assert stub.requests == [] and AIBudgetAlert.objects.filter(tenant=tenant).count() == 1


def test_each_recorded_call_adds_to_its_tenants_month_and_the_check_reads_one_row(tenant, other_tenant,
                                                                                   django_assert_num_queries):
    for usd in ("0.10", "0.25", "0.05"):
        _spent(tenant, usd)
    _spent(other_tenant, "9.00")
    ai_call_record(tenant_id=None, purpose="plan", model="gpt-4o-mini", status=AICall.Status.OK,
                   cost_usd=Decimal("1"))

    row = AITenantMonthSpend.objects.get(tenant=tenant)
    assert (row.spend_usd, row.calls, row.month) == (Decimal("0.40"), 3, month_start(clock.now()).date())
    with django_assert_num_queries(1):
        assert tenant_spend_this_month_usd(tenant.pk) == Decimal("0.40")
