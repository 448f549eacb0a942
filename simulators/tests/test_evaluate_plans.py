"""`manage.py evaluate_plans`: figures for the built-in planner and the AI path on the example contacts."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from campaigns.plan_scoring import quiet_path
from simulators.openai_stub.testing import clean_ai_redis_fixture  # noqa: F401 - pytest fixture
from simulators.plan_evaluation import DEFAULT_CONTACTS, contacts_from_csv, evaluate_built_in


def test_the_built_in_planner_scores_full_marks_on_the_example_contacts():
    contacts = contacts_from_csv(DEFAULT_CONTACTS)
    figures = evaluate_built_in(contacts)
    assert figures.plans == 20
    assert (figures.valid, figures.clean, figures.language_match, figures.personalised) == (20, 20, 20, 20)
    assert figures.touches_median == 5 and 14 <= figures.span_days_median <= 21
    assert figures.distinct_first_bodies == 20


def test_the_quiet_path_follows_no_reply_and_counts_days():
    plan = {"startNodeId": "a", "nodes": [
        {"id": "a", "type": "send", "transitions": [{"on": "click", "to": "h"}, {"on": "no_reply", "after": "P3D",
                                                                                  "to": "w"}], "message": {}},
        {"id": "w", "type": "wait", "duration": "P2D", "next": "b"},
        {"id": "b", "type": "send", "transitions": [{"on": "sent", "to": "z"}], "message": {}},
        {"id": "h", "type": "send", "transitions": [], "message": {}}, {"id": "z", "type": "stop"}]}
    assert [(node["id"], day) for node, day in quiet_path(plan)] == [("a", 0.0), ("b", 5.0)]


@pytest.mark.django_db
def test_the_command_prints_figures_for_both_paths(clean_ai_redis):
    out = io.StringIO()
    call_command("evaluate_plans", "--fault-rate", "0.5", "--seed", "3", stdout=out)
    text = out.getvalue()
    assert "built-in planner: 20 plans" in text and "valid 20/20" in text
    assert "AI path (model-like stub, fault rate 0.5, seed 3): 20 plans" in text
    assert "sources:" in text and "ai_repaired" in text


def test_a_contacts_file_that_cannot_be_read_exits_2_with_one_line(tmp_path: Path):
    with pytest.raises(CommandError) as info:
        call_command("evaluate_plans", "--contacts", str(tmp_path / "nope.csv"), "--built-in-only")
    assert info.value.returncode == 2 and "cannot read" in str(info.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("company,first_name\nAcme,Dana\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("evaluate_plans", "--contacts", str(bad), "--built-in-only")
