"""Lead analysis: what a company does, its likely pains, angles for the offer, a fit score with reasons.

    leads_analyse(lead_ids=[...])  # analyse, store Lead.analysis, then queue plan jobs, staggered

Stored in `Lead.analysis` as {"summary", "pains", "angles", "fit_score", "fit_reasons", "source",
"analysed_at"} with `analysis_status` pending -> running -> done (or failed). With an OpenAI key the
model writes it (JSON-schema output, sanitised like any untrusted input); without one, or when the call
fails, a deterministic keyword analysis of the same text does, so plans never wait on the AI.

After leads are analysed, contacts tells whoever listens (`leads_analysed`, contacts.interface): campaigns
queues plan generation for the pending enrolments of those leads' contacts. The offers the analysis
weighs the lead against come from campaigns too (`lead_offers`); contacts imports neither.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from contacts.extension_points import lead_offers, leads_analysed
from contacts.models import Contact, Lead
from outreach import clock
from outreach.ai import client as ai_client
from outreach.ai.prompting import PromptBook

PROMPTS = PromptBook.beside(__file__)

logger = logging.getLogger(__name__)

_MAX_ITEMS = 5
_MAX_ITEM_CHARS = 300
_MAX_SUMMARY_CHARS = 1200
_MAX_TEXT_TO_MODEL = 8000

ANALYSIS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "pains", "angles", "fit_score", "fit_reasons"],
    "properties": {
        "summary": {"type": "string"},
        "pains": {"type": "array", "items": {"type": "string"}},
        "angles": {"type": "array", "items": {"type": "string"}},
        "fit_score": {"type": "integer"},
        "fit_reasons": {"type": "array", "items": {"type": "string"}},
    },
}


# --- the deterministic analysis ---------------------------------------------------------------------------

# Keyword -> likely pain. Ordered: the first matches come first in the analysis.
_PAIN_RULES: list[tuple[str, str]] = [
    (r"\bmanual|spreadsheet|excel|paper", "manual, spreadsheet-driven processes"),
    (r"\bonboard", "slow onboarding"),
    (r"\blogistic|shipping|shipment|freight|warehouse|supply chain", "shipment delays and poor visibility"),
    (r"\bhiring|grow|scal|expan", "scaling operations while growing"),
    (r"\bcomplian|regulat|audit|gdpr|iso ?27001|soc ?2", "keeping up with compliance requirements"),
    (r"\bcustomer support|customer service|helpdesk|tickets?\b", "a growing support load"),
    (r"\bsales|pipeline|leads?\b|crm", "a pipeline that depends on manual follow-up"),
    (r"\bcost|margin|budget|efficien", "pressure on costs and margins"),
    (r"\bsecurity|breach|threat", "security risk"),
    (r"\bdata|report|analytics|dashboard", "scattered data and slow reporting"),
    (r"\bintegrat|legacy|migrat", "integrating legacy systems"),
]
_DECISION_TITLES = re.compile(
    r"\b(?:ceo|cto|coo|cfo|cio|cmo|chief|founder|owner|president|vp|vice president|head|director|"
    r"geschäftsführer|leiter|leiterin|inhaber|vorstand|directeur|directora?)\b", re.I)
_STOP_WORDS = frozenset(
    "about after also and are but can for from has have into its more not our than that the their them then "
    "they this those through with your you will what when where which while who why would could should".split()
)
_WORD = re.compile(r"[a-zäöüßéèàç]{5,}", re.I)


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text or "") if w.lower() not in _STOP_WORDS}


def _first_sentences(text: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text or "").strip()
    if not flat:
        return ""
    sentences = re.split(r"(?<=[.!?])\s+", flat)
    out = ""
    for sentence in sentences[:2]:
        if len(out) + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    return out or flat[:limit].rsplit(" ", 1)[0]


def analysis_fallback(*, name: str, domain: str, text: str, titles: Iterable[str], offers: Iterable[str]) -> dict:
    """A deterministic analysis from the lead's own text (no AI): same input, same output."""
    offers = [o for o in offers if o]
    titles = [t for t in titles if t]
    lowered = (text or "").lower()
    summary = _first_sentences(text) or (f"{name} ({domain})." if domain else f"{name}.")
    pains = [pain for pattern, pain in _PAIN_RULES if re.search(pattern, lowered)][:_MAX_ITEMS]
    overlap = sorted(_words(text) & _words(" ".join(offers)))
    score, reasons = _fallback_fit(text=text, titles=titles, offers=offers, pains=pains, overlap=overlap)
    return {
        "summary": summary[:_MAX_SUMMARY_CHARS],
        "pains": pains,
        "angles": _fallback_angles(name=name, titles=titles, offers=offers, pains=pains, overlap=overlap),
        "fit_score": max(0, min(100, score)),
        "fit_reasons": reasons[:_MAX_ITEMS],
    }


def _fallback_angles(*, name: str, titles: list[str], offers: list[str], pains: list[str],
                     overlap: list[str]) -> list[str]:
    angles: list[str] = []
    if pains and offers:
        angles.append(f"How {offers[0].strip().rstrip('.')} addresses {pains[0]}")
    if overlap:
        angles.append(f"Shared ground: {', '.join(overlap[:4])}")
    if titles:
        angles.append(f"What it would mean for a {titles[0]}")
    if not angles:
        angles.append(f"An outside view on how {name} works today")
    return angles[:_MAX_ITEMS]


def _fallback_fit(*, text: str, titles: list[str], offers: list[str], pains: list[str],
                  overlap: list[str]) -> tuple[int, list[str]]:
    """The fit score (unclamped) and the reasons for it, from what the text shares with the offer."""
    score, reasons = 50, []
    if not (text or "").strip():
        score -= 20
        reasons.append("no website text or notes: little to go on")
    if overlap:
        score += min(30, 10 * len(overlap))
        reasons.append(f"the lead's text shares terms with the offer ({', '.join(overlap[:4])})")
    elif offers and text:
        reasons.append("no terms in common with the offer")
    if pains:
        score += min(10, 5 * len(pains))
        reasons.append(f"likely pains: {', '.join(pains[:3])}")
    if any(_DECISION_TITLES.search(t) for t in titles):
        score += 5
        reasons.append("a decision-maker among the contacts")
    elif not titles:
        reasons.append("no contact titles known")
    return score, reasons


# --- inputs ------------------------------------------------------------------------------------------------


def _lead_text(lead: Lead) -> str:
    return "\n\n".join(part for part in (lead.website_text, lead.notes) if part and part.strip())


def _contact_rows(lead: Lead) -> list[dict[str, str]]:
    return [
        {"name": " ".join(p for p in (c.first_name, c.last_name) if p), "title": c.title}
        for c in Contact.objects.filter(lead=lead).only("first_name", "last_name", "title").order_by("id")[:25]
    ]


def _offers_for_lead(lead: Lead) -> list[str]:
    """The offers this lead is being approached with (campaigns knows: its contacts' campaigns, else the
    tenant's latest); none when no app provides them."""
    return list(lead_offers(tenant_id=lead.tenant_id, lead_id=lead.pk))


def lead_analysis_deterministic(*, lead: Lead) -> dict:
    contacts = _contact_rows(lead)
    return analysis_fallback(name=lead.name, domain=lead.domain, text=_lead_text(lead),
                             titles=[c["title"] for c in contacts], offers=_offers_for_lead(lead))


def lead_analysis_or_fallback(*, lead: Lead) -> dict:
    """The stored analysis when there is one, else the deterministic one (computed, not stored)."""
    if isinstance(lead.analysis, dict) and lead.analysis.get("summary") is not None:
        return lead.analysis
    return lead_analysis_deterministic(lead=lead)


# --- AI ----------------------------------------------------------------------------------------------------


def _clean_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    items = [re.sub(r"\s+", " ", str(v)).strip()[:_MAX_ITEM_CHARS] for v in value if isinstance(v, (str, int, float))]
    return [i for i in items if i][:_MAX_ITEMS]


def _sanitise_ai_analysis(data: Any) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("summary"), str):
        raise ValueError("analysis is not an object with a summary")
    try:
        score = int(round(float(data.get("fit_score"))))
    except (TypeError, ValueError) as exc:
        raise ValueError("fit_score is not a number") from exc
    return {
        "summary": re.sub(r"\s+", " ", data["summary"]).strip()[:_MAX_SUMMARY_CHARS],
        "pains": _clean_list(data.get("pains")),
        "angles": _clean_list(data.get("angles")),
        "fit_score": max(0, min(100, score)),
        "fit_reasons": _clean_list(data.get("fit_reasons")),
    }


def _analysis_ai(*, lead: Lead) -> dict:
    payload = {"name": lead.name, "domain": lead.domain, "website_text_or_notes": _lead_text(lead)[:_MAX_TEXT_TO_MODEL],
               "contacts": _contact_rows(lead)}
    offers = _offers_for_lead(lead)
    result = ai_client.complete_json(
        tenant=lead.tenant_id,
        purpose="lead_analysis",
        messages=[
            {"role": "system", "content": PROMPTS.load("lead_analysis_system")},
            {"role": "user", "content": PROMPTS.render(
                "lead_analysis_user", offers="; ".join(offers) or "(not given)",
                lead_json=json.dumps(payload, ensure_ascii=False, indent=1))},
        ],
        schema=ANALYSIS_JSON_SCHEMA,
        schema_name="lead_analysis",
    )
    if result.parse_error:
        raise ai_client.AIError(result.parse_error, kind="bad_output")
    try:
        return _sanitise_ai_analysis(result.data)
    except ValueError as exc:
        raise ai_client.AIError(str(exc), kind="bad_output") from exc


# --- services ----------------------------------------------------------------------------------------------


def lead_analyse(*, lead: Lead) -> dict:
    """Analyse one lead and store the result. Never raises for AI trouble: it falls back."""
    Lead.objects.filter(pk=lead.pk).update(analysis_status=Lead.AnalysisStatus.RUNNING, updated_at=clock.now())
    source, detail = "fallback", ""
    analysis: dict | None = None
    if ai_client.ai_enabled():
        try:
            analysis = _analysis_ai(lead=lead)
            source = "ai"
        except ai_client.AIError as exc:
            detail = f"AI failed ({exc.kind}); deterministic analysis used"
            logger.warning("lead %s: AI analysis failed, using the deterministic one: %s", lead.pk, exc)
    if analysis is None:
        analysis = lead_analysis_deterministic(lead=lead)
    analysis = {**analysis, "source": source, "analysed_at": clock.now().isoformat()}
    if detail:
        analysis["detail"] = detail
    Lead.objects.filter(pk=lead.pk).update(analysis=analysis, analysis_status=Lead.AnalysisStatus.DONE,
                                           updated_at=clock.now())
    lead.analysis, lead.analysis_status = analysis, Lead.AnalysisStatus.DONE
    return analysis


def leads_analyse(*, lead_ids: list[int]) -> list[int]:
    """Analyse each lead (skipping gone ones), then tell the listeners (campaigns queues plan jobs for the
    pending contact campaigns of their contacts).

    Returns the contact campaign ids the listeners queued. A lead already analysed is not analysed again
    (a redelivered task costs no tokens) but the listeners are still told, so its pending plans are queued.
    """
    leads = list(Lead.objects.filter(pk__in=lead_ids).order_by("id"))
    for lead in leads:
        if lead.analysis_status == Lead.AnalysisStatus.DONE and lead.analysis:
            continue
        try:
            lead_analyse(lead=lead)
        except Exception:
            Lead.objects.filter(pk=lead.pk).update(analysis_status=Lead.AnalysisStatus.FAILED, updated_at=clock.now())
            logger.exception("lead %s: analysis failed", lead.pk)
    queued = leads_analysed.send(lead_ids=[lead.pk for lead in leads])
    return [contact_campaign_id for ids in queued for contact_campaign_id in ids]
