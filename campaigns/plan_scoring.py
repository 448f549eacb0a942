"""How good a plan is for its contact, by the checks a head of sales would apply (the `evaluate_plans` figures).

Per plan: valid (the DSL validator), clean (the copy checks), touches and span of the path a contact takes
who never answers, whether every email is in the contact's language (or the plan says it fell back to
English), and personalisation of the first touch. Over a set: distinct bodies. Pure: no database, no model.
"""
from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from campaigns.copy_guards import copy_problems
from campaigns.dsl import validate_plan
from campaigns.durations import parse_duration
from campaigns.fallback_planner import PlanInputs
from campaigns.language_guess import SUPPORTED_LANGUAGES, base_language, written_in
from campaigns.sequence_facts import word_limit_of

_SELF_FIRING = ("no_reply", "sent")


@dataclasses.dataclass(frozen=True)
class PlanScore:
    valid: bool
    clean: bool
    touches: int
    span_days: float
    language_match: bool
    personalised: bool
    bodies: tuple[str, ...]
    problems: tuple[str, ...] = ()


def quiet_path(plan: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], float]]:
    """The sends of a contact who never opens, clicks or replies, each with days since the first send."""
    by_id = {node.get("id"): node for node in plan.get("nodes") or [] if isinstance(node, Mapping)}
    node, day, path, seen = by_id.get(plan.get("startNodeId")), 0.0, [], set()
    while node is not None and node.get("id") not in seen:
        seen.add(node.get("id"))
        if node.get("type") == "wait":
            day += parse_duration(node["duration"]).total_seconds() / 86400
            node = by_id.get(node.get("next"))
            continue
        if node.get("type") != "send":
            break
        path.append((node, day))
        move = next((t for t in node.get("transitions") or [] if t.get("on") in _SELF_FIRING), None)
        if move is None:
            break
        day += parse_duration(move["after"]).total_seconds() / 86400 if move.get("after") else 0
        node = by_id.get(move.get("to"))
    return path


def _language_match(plan: Mapping[str, Any], language: str, texts: list[str]) -> bool:
    wanted = base_language(language)
    if wanted not in SUPPORTED_LANGUAGES:
        metadata = plan.get("metadata") or {}
        return bool(metadata.get("languageFallback")) or not wanted  # fell back, and says so
    return all(written_in(text, wanted) for text in texts)


def score_plan(plan: Mapping[str, Any], inputs: PlanInputs) -> PlanScore:
    if validate_plan(plan):
        return PlanScore(False, False, 0, 0.0, False, False, (), ("invalid plan",))
    problems = copy_problems(
        plan=plan, first_name=inputs.contact.first_name, last_name=inputs.contact.last_name,
        allowed_link_domains=inputs.brief.allowed_link_domains, company=inputs.lead.name,
        lead_facts=(*inputs.lead.pains, *inputs.lead.angles), language=inputs.contact.language,
        word_limit=word_limit_of(inputs.brief.ai_instructions))
    path = quiet_path(plan)
    texts = [str(node["message"].get("text", "")) for node, _day in path]
    return PlanScore(
        valid=True,
        clean=not problems,
        touches=len(path),
        span_days=path[-1][1] if path else 0.0,
        language_match=_language_match(plan, inputs.contact.language, texts),
        personalised=not any(p.get("rule") == "personalisation" for p in problems),
        bodies=tuple(texts),
        problems=tuple(f"{p.get('rule')}@{p.get('node')}" for p in problems),
    )


@dataclasses.dataclass(frozen=True)
class Figures:
    plans: int
    valid: int
    clean: int
    touches_median: float
    span_days_median: float
    language_match: int
    personalised: int
    distinct_first_bodies: int
    distinct_bodies: int
    bodies: int

    def lines(self, label: str) -> list[str]:
        n = self.plans
        return [
            f"{label}: {n} plans",
            f"  valid {self.valid}/{n}, copy checks clean {self.clean}/{n}",
            f"  touches (median) {self.touches_median:g}, span of touches (median) {self.span_days_median:g} days",
            f"  language match {self.language_match}/{n}, personalised first touch {self.personalised}/{n}",
            f"  distinct first emails {self.distinct_first_bodies}/{n}, distinct bodies "
            f"{self.distinct_bodies}/{self.bodies}",
        ]


def figures(scores: Iterable[PlanScore]) -> Figures:
    scores = list(scores)
    every_body = [body for s in scores for body in s.bodies]
    return Figures(
        plans=len(scores),
        valid=sum(s.valid for s in scores),
        clean=sum(s.clean for s in scores),
        touches_median=statistics.median([s.touches for s in scores]) if scores else 0,
        span_days_median=statistics.median([s.span_days for s in scores]) if scores else 0,
        language_match=sum(s.language_match for s in scores),
        personalised=sum(s.personalised for s in scores),
        distinct_first_bodies=len({s.bodies[0] for s in scores if s.bodies}),
        distinct_bodies=len(set(every_body)),
        bodies=len(every_body),
    )
