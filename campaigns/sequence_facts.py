"""What the built-in planner reads out of its inputs before it writes a word: facts, not copy.

- the contact's name as people write it: an honorific typed into the first name ("Dr. Alan") is an
  honorific, not part of the name;
- the function a title belongs to (a "Head of Procurement" and a "Procurement" title both work in
  procurement: the copy speaks of procurement teams, never "reach you as Procurement");
- the lead's industry and pains, as ids the language files translate;
- the brief's ask (a "20-minute demo" goal), a pilot or trial offered in the offer or the `ai_instructions`,
  and a word limit the instructions set.

Pure functions of the inputs; the language files (campaigns/sequence_copy/*.json) turn the ids into words.
"""
from __future__ import annotations

import dataclasses
import re

_HONORIFICS = {
    "dr": "dr", "dra": "dr", "doctor": "dr", "docteur": "dr", "dott": "dr", "dottssa": "dr", "drs": "dr",
    "prof": "prof", "professor": "prof", "pr": "prof",
    "mr": "mr", "herr": "mr", "monsieur": "mr", "m": "mr", "sr": "mr", "señor": "mr", "senhor": "mr",
    "sig": "mr", "signor": "mr", "dhr": "mr", "meneer": "mr",
    "mrs": "mrs", "frau": "mrs", "madame": "mrs", "mme": "mrs", "sra": "mrs", "señora": "mrs", "senhora": "mrs",
    "signora": "mrs", "mevr": "mrs", "mevrouw": "mrs",
    "ms": "ms", "miss": "ms", "mlle": "ms",
}
# Honorifics worth keeping in a greeting (a doctor is greeted as one); Mr/Mrs only make a greeting formal.
ACADEMIC = ("dr", "prof")


def honorific_key(word: str) -> str | None:
    """"Dr." / "dr" / "Prof" -> its id; None for a word that is not an honorific."""
    return _HONORIFICS.get(word.strip().rstrip(".").replace(".", "").casefold())


@dataclasses.dataclass(frozen=True)
class PersonName:
    given: str = ""
    family: str = ""
    honorific: str | None = None  # an id of _HONORIFICS' values: "dr", "prof", "mr", "mrs", "ms"


def person_name(first_name: str, last_name: str) -> PersonName:
    """Split honorifics off the name fields: "Dr. Alan" + "Turing" -> (Alan, Turing, dr)."""
    honorific = None
    given_words = []
    for word in (first_name or "").split():
        key = honorific_key(word)
        if key and not given_words and honorific is None:
            honorific = key
        else:
            given_words.append(word)
    family_words = (last_name or "").split()
    if family_words and honorific is None and honorific_key(family_words[0]) and len(family_words) > 1:
        honorific, family_words = honorific_key(family_words[0]), family_words[1:]
    return PersonName(" ".join(given_words), " ".join(family_words), honorific)


_AREA_RULES: list[tuple[str, str]] = [
    ("procurement", r"procure|purchas|einkauf|beschaffung|achat|compras|inkoop|acquist|sourcing|buyer"),
    ("finance", r"\bcfo\b|financ|finanz|controll|account|buchhalt|comptab|contab|boekhoud|tesorer"),
    ("it", r"\bcto\b|\bcio\b|\bit\b|engineer|technolog|developer|software|entwickl|informati|ingénie|tecnolog|"
           r"ingegner|sistemi|data\b"),
    ("marketing", r"marketing|growth|demand gen|brand"),
    ("sales", r"sales|vertrieb|verkauf|commercial|comercial|ventas|vendas|verkoop|vendit|business develop|"
              r"account exec|revenue|\bcro\b"),
    ("support", r"customer success|support|kundenservice|kundendienst|service client|atención|atendimento|"
                r"klantenservice|assistenza|customer experience"),
    ("people", r"\bhr\b|human resources|people|talent|recruit|personal|\brh\b|rrhh|ressources humaines|"
               r"recursos humanos|risorse umane"),
    ("operations", r"operat|\bops\b|\bcoo\b|betrieb|logisti|supply|opérations|operacion|operaç|operatie|"
                   r"operazion|fulfil|produktion|production"),
    ("executive", r"\bceo\b|founder|gründer|owner|president|managing director|geschäftsführ|inhaber|vorstand|"
                  r"directeur général|\bpdg\b|gérant|director general|fundador|sócio|eigenaar|oprichter|"
                  r"amministrator|titolare|general manager"),
]


def title_area(title: str) -> str | None:
    """The function a job title belongs to ("VP Sales" -> sales); None when the title says nothing known."""
    lowered = (title or "").casefold()
    return next((area for area, pattern in _AREA_RULES if re.search(pattern, lowered)), None)


_INDUSTRY_RULES: list[tuple[str, str]] = [
    ("logistics", r"logisti|freight|shipping|shipment|warehous|spedition|transport|fulfil"),
    ("software", r"software|saas|platform|\bapp\b|cloud|developer"),
    ("manufacturing", r"manufactur|factory|industrial|plant|maschinenbau|fertigung|produc"),
    ("retail", r"retail|e-?commerce|shop|store|handel|consumer"),
    ("finance", r"bank|insur|fintech|financ|payment|versicher"),
    ("health", r"health|clinic|hospital|medical|pharma|care\b|gesundheit"),
]


def industry_of(text: str) -> str | None:
    lowered = (text or "").casefold()
    return next((key for key, pattern in _INDUSTRY_RULES if re.search(pattern, lowered)), None)


@dataclasses.dataclass(frozen=True)
class Ask:
    kind: str = "call"  # "demo", "call" or "meeting": the language files' `ask` keys
    minutes: int | None = None


_MINUTES = re.compile(r"(\d{1,3})\s*-?\s*(?:min\b|mins\b|minute|minuten|minutes|minutos|minuti|minütig)", re.I)
_ASK_KINDS = [("demo", r"demo|walk-?through|vorführ|démonstration|demonstração|demostración"),
              ("meeting", r"meeting|meet\b|termin|rendez-vous|reunión|reunião|afspraak|incontro|visit"),
              ("call", r"call|chat|talk|gespräch|telefon|appel|llamada|chamada|gesprek|chiamata|conversa")]


def ask_of(goal: str) -> Ask:
    """The brief's goal as a call to action the language files can phrase ("Book a 20-minute demo")."""
    lowered = (goal or "").casefold()
    kind = next((k for k, pattern in _ASK_KINDS if re.search(pattern, lowered)), "call")
    minutes = _MINUTES.search(lowered)
    value = int(minutes.group(1)) if minutes else None
    return Ask(kind=kind, minutes=value if value and 5 <= value <= 120 else None)


@dataclasses.dataclass(frozen=True)
class Offer:
    kind: str  # "pilot" or "trial": the language files' keys
    days: int | None = None


_DAY_WORDS = r"(?:day|days|tage|tagen|tägig\w*|jours?|días?|dias?|dagen|giorni)"
_PILOT_WORDS = {
    "pilot": r"\bpilot\w*|\bproof of concept|\bpoc\b",
    "trial": r"\btrial|\btestphase|\bessai|\bprueba|\bproefperiode",
}


def offer_of(*texts: str) -> Offer | None:
    """A pilot or trial offered anywhere in these texts ("a 14-day pilot", "14 Tage Testphase"), with its days."""
    lowered = " ".join(t or "" for t in texts).casefold()
    for kind, words in _PILOT_WORDS.items():
        near = re.search(rf"(\d{{1,3}})\s*-?\s*{_DAY_WORDS}\s*-?\s*(?:\w+\s+){{0,2}}(?:{words})", lowered)
        if near:
            return Offer(kind, int(near.group(1)))
        before = re.search(rf"(?:{words})\s+(?:\w+\s+){{0,2}}(\d{{1,3}})\s*-?\s*{_DAY_WORDS}", lowered)
        if before:
            return Offer(kind, int(before.group(1)))
        if re.search(words, lowered):
            return Offer(kind)
    return None


_WORD_LIMIT = re.compile(
    r"(?:under|below|max(?:imum)?\.?|at most|no more than|fewer than|less than|up to|within|höchstens|maximal|"
    r"unter|moins de|au plus|menos de|máximo|massimo|al massimo|hooguit|maximaal|minder dan)\s*(\d{2,4})\s*"
    r"(?:words|wörter|worte|mots|palabras|palavras|woorden|parole)", re.I)


def word_limit_of(instructions: str) -> int | None:
    """The word limit the campaign's instructions set ("keep it under 90 words"); None when they set none."""
    found = _WORD_LIMIT.search(instructions or "")
    value = int(found.group(1)) if found else None
    return value if value and value >= 25 else None
