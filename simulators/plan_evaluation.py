"""`evaluate_plans`: the built-in planner and the AI path (against the model-like stub) on a set of contacts.

Contacts come from a CSV (campaigns/examples/evaluation_contacts.csv by default: 20 contacts of varied
industries, titles, time zones and languages). The built-in path calls the planner directly; the AI path
runs `plan_draft` with the real client against an in-process model-like stub (simulators/openai_stub/
model_like.py) at the given fault rate, so its figures include the repairs and fallbacks. The AI path
writes AICall rows (tenant: none) like any AI call.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from django.test import override_settings

from campaigns.fallback_planner import BriefInput, ContactInput, LeadInput, PlanInputs, fallback_plan
from campaigns.generation import plan_draft
from campaigns.plan_scoring import Figures, figures, score_plan
from simulators.openai_stub.model_like import ModelLikeResponder
from simulators.openai_stub.server import start_stub

DEFAULT_CONTACTS = Path(__file__).resolve().parent.parent / "campaigns" / "examples" / "evaluation_contacts.csv"
DEFAULT_BRIEF = BriefInput(
    goal="Book a 20-minute demo", offer="Onboarding automation that halves time-to-first-shipment",
    ai_instructions="Mention our 14-day pilot. Keep every email under 120 words.", campaign_name="Evaluation",
    sender_name="Sam Lee", sender_company="Shipfast", allowed_link_domains=("shipfast.example",))
_REQUIRED_COLUMNS = {"company", "first_name", "last_name", "title", "timezone", "language"}


class ContactsFileError(ValueError):
    """The contacts CSV cannot be used (missing, or without the needed columns)."""


def contacts_from_csv(path: Path, *, brief: BriefInput = DEFAULT_BRIEF) -> list[PlanInputs]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ContactsFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    missing = _REQUIRED_COLUMNS - set(rows[0] if rows else ())
    if missing:
        raise ContactsFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return [PlanInputs(
        brief=brief,
        contact=ContactInput(first_name=row["first_name"], last_name=row["last_name"], title=row["title"],
                             email=row.get("email", ""), timezone=row["timezone"], language=row["language"]),
        lead=LeadInput(name=row["company"], domain=row.get("domain", ""), summary=row.get("summary", ""),
                       pains=tuple(p for p in (row.get("pains") or "").split("|") if p)),
    ) for row in rows]


@dataclasses.dataclass(frozen=True)
class AIRun:
    figures: Figures
    sources: Counter


def evaluate_built_in(contacts: list[PlanInputs]) -> Figures:
    return figures(score_plan(fallback_plan(inputs), inputs) for inputs in contacts)


def _stubbed_ai(responder: ModelLikeResponder) -> Iterator[None]:
    """Settings pointing the real client at an in-process model-like stub, with no waiting on caps."""
    handle = start_stub(port=0, responder=responder)
    try:
        with override_settings(OPENAI_BASE_URL=handle.base_url, OPENAI_API_KEY="sk-evaluate-plans",
                               AI_BACKOFF_BASE_SECONDS=0.01, AI_BACKOFF_MAX_SECONDS=0.05, AI_TENANT_CONCURRENCY=8,
                               AI_TENANT_RATE_PER_MINUTE=60000, AI_TENANT_BURST=1000, AI_ACQUIRE_WAIT_SECONDS=1.0):
            yield
    finally:
        handle.stop()


def evaluate_ai(contacts: list[PlanInputs], *, fault_rate: float, seed: int) -> AIRun:
    sources: Counter = Counter()
    scores = []
    with contextlib.contextmanager(_stubbed_ai)(ModelLikeResponder(fault_rate=fault_rate, seed=seed)):
        for inputs in contacts:
            draft = plan_draft(inputs=inputs, tenant=None)
            sources[draft.source] += 1
            scores.append(score_plan(draft.plan, inputs))
    return AIRun(figures(scores), sources)
