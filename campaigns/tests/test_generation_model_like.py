"""The AI path on output a model would write: the model-like stub's own plans and its faults, over real HTTP.

Each test picks one fault (rate 1.0), so the outcome is deterministic; the repair round sees the problems
and the stub answers it cleanly (or, with repair_fault_rate 1.0, makes the same kind of mistake again).
"""
from __future__ import annotations

import pytest

from campaigns.generation import contact_campaign_generate_plan
from campaigns.tests.factories import CampaignFactory, ContactCampaignFactory
from contacts.tests.factories import ContactFactory, LeadFactory
from simulators.openai_stub.model_like import ModelLikeResponder
from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.django_db


def _cc(tenant, *, language: str = "en", first_name: str = "Dana"):
    lead = LeadFactory(tenant=tenant, name="Acme Logistics", analysis_status="done",
                       analysis={"summary": "Acme forwards freight.", "pains": ["slow onboarding"], "angles": []})
    contact = ContactFactory(tenant=tenant, lead=lead, first_name=first_name, last_name="Smith",
                             timezone="Europe/Berlin", language=language)
    return ContactCampaignFactory(tenant=tenant, contact=contact,
                                  campaign=CampaignFactory(tenant=tenant, allowed_link_domains=[]))


def test_a_clean_model_answer_is_its_own_plan_in_the_contacts_language(stub, tenant):
    stub.responder = ModelLikeResponder(fault_rate=0.0, seed=1)
    version = contact_campaign_generate_plan(contact_campaign=_cc(tenant, language="de", first_name="Jörg"))
    assert version.source == "ai", version.source_detail
    first = version.plan_json["nodes"][0]
    assert first["id"] != "email_intro"  # not the built-in planner's plan
    assert first["message"]["text"].startswith("Hallo Jörg,")
    assert len(stub.requests) == 1


@pytest.mark.parametrize(("fault", "language", "seen_in_repair"), [
    ("invalid_json", "en", "not valid JSON"),
    ("missing_node", "en", "follow_up_9"),
    ("placeholder", "en", "{{first_name}}"),
    ("wrong_language", "de", "the contact's language is 'de'"),
])
def test_each_fault_a_model_makes_is_caught_and_repaired(stub, tenant, fault, language, seen_in_repair):
    stub.responder = ModelLikeResponder(fault_rate=1.0, faults=(fault,), seed=2)
    version = contact_campaign_generate_plan(contact_campaign=_cc(tenant, language=language))
    assert version.source == "ai_repaired", version.source_detail
    assert len(stub.requests) == 2
    assert seen_in_repair in stub.requests[1].messages[-1]["content"]


def test_a_refusal_falls_back_to_the_built_in_planner_without_a_repair_call(stub, tenant):
    stub.responder = ModelLikeResponder(fault_rate=1.0, faults=("refusal",))
    version = contact_campaign_generate_plan(contact_campaign=_cc(tenant))
    assert version.source == "fallback" and "refused" in version.source_detail
    assert version.plan_json["nodes"][0]["id"] == "email_intro" and len(stub.requests) == 1


def test_a_model_that_repeats_its_mistake_ends_in_the_fallback_with_the_reason(stub, tenant):
    stub.responder = ModelLikeResponder(fault_rate=1.0, repair_fault_rate=1.0, faults=("placeholder",))
    version = contact_campaign_generate_plan(contact_campaign=_cc(tenant))
    assert version.source == "fallback" and "still invalid after one repair round" in version.source_detail
    assert "placeholder" in version.source_detail and len(stub.requests) == 2


def test_the_fault_rate_is_deterministic_per_seed_and_request():
    inputs = {"contact": {"language": "de"}, "lead": {}, "brief": {}}
    requests = [{"messages": [{"role": "user", "content": f"n={n}"}]} for n in range(200)]
    model = ModelLikeResponder(fault_rate=0.3, seed=7)
    faults = [model.fault_for(r, inputs) for r in requests]
    assert faults == [ModelLikeResponder(fault_rate=0.3, seed=7).fault_for(r, inputs) for r in requests]
    share = sum(f is not None for f in faults) / len(faults)
    assert 0.2 < share < 0.4 and set(faults) - {None} == set(ModelLikeResponder().faults)
