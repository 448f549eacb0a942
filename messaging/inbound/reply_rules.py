"""The rule-based reply classifier: stop requests first, then auto-replies, then keyword scores.

It answers offline (no key, or the model failed) and decides the certain signals even when the AI answers
(see messaging.inbound.classification).
"""
from __future__ import annotations

import datetime as dt
import re

from messaging.inbound.auto_replies import auto_reply_reason, is_absence
from messaging.inbound.labels import ReplyClassification
from messaging.inbound.language import detect_language
from messaging.inbound.quotes import new_text
from messaging.inbound.return_dates import read_return_date
from messaging.inbound.stop_phrases import flatten, stop_requested

# --- rule tables --------------------------------------------------------------------------------------
# Patterns run on lower-cased, whitespace-collapsed text. EN/DE/FR/ES/IT/NL/PT (stop phrases: stop_phrases).


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# "not interested" and friends. Matched before the positive table, and masked out of the text the
# positive table sees, so "not interested" does not also count as "interested".
_NEGATIVE = _rx(
    r"\bnot (?:really |at all |currently )?interested\b", r"\bno (?:real )?interest\b",
    r"\bno,? thanks?\b", r"\bno,? thank you\b", r"\bthanks,? but no\b", r"\bthanks but we're good\b",
    r"\bnot (?:a (?:good |great )?fit|for us|relevant|a priority|something we need)\b",
    r"\bwe (?:already |currently )?(?:have|use|work with) (?:a |an )?(?:solution|provider|vendor|tool|partner"
    r"|system|contract)\b", r"\bwe already (?:have|use|work with)\b", r"\bwe're (?:all )?set\b",
    r"\bwe are (?:all )?set\b", r"\bnot looking\b", r"\b(?:i'll|we'll|will|going to|gonna) pass\b",
    r"\bpass on this\b", r"\bno need\b", r"\bno budget\b", r"\bnot (?:at this|the right) time\b",
    r"\bhappy with (?:our|the) current\b", r"\bnot something we\b", r"\bplease don't follow up\b",
    r"\bdon't see a fit\b", r"\bdecline\b",
    r"\bkein(?:erlei)? (?:interesse|bedarf)\b", r"\bnicht interessiert\b", r"\bnein,? danke\b",
    r"\bdanke,? (?:aber )?(?:nein|kein)\b", r"\bhaben (?:wir )?(?:bereits|schon) (?:eine?n? )?",
    r"\bpasst (?:für uns )?(?:leider )?nicht\b", r"\b(?:derzeit|aktuell|momentan|zurzeit) (?:leider )?(?:kein|nicht)",
    r"\bkein budget\b", r"\bverzichten\b", r"\bkeine verwendung\b",
    r"\bpas intéress", r"\bne (?:sommes|suis) pas intéress", r"\bpas (?:de )?besoin\b", r"\bnon,? merci\b",
    r"\bavons déjà\b", r"\bpas pour nous\b", r"\bpas le moment\b",
    r"\bno (?:me|nos) interesa\b", r"\bno estamos interesad", r"\bno,? gracias\b", r"\bya (?:tenemos|contamos)\b",
    r"\bno necesitamos\b",
    r"\bnon (?:siamo|sono) interessat", r"\bno,? grazie\b", r"\babbiamo già\b", r"\bnon ci interessa\b",
    r"\bgeen interesse\b", r"\bniet geïnteresseerd\b", r"\bnee,? dank", r"\bhebben al\b",
    r"\bnão (?:temos|tenho) interesse\b", r"\bnão,? obrigad", r"\bjá temos\b", r"\bsem interesse\b",
    r"\bno es (?:una )?prioridad\b", r"\bgeen budget\b", r"\bliever niet\b", r"\bnei,? takk\b",
    r"\bnie jesteśmy zainteresowani\b", r"\bnie,? dziękuję\b", r"\bnej tack\b", r"\bei kiitos\b",
)

_POSITIVE = _rx(
    r"\binterested\b", r"\bsounds (?:good|great|interesting|promising|useful)\b", r"\blooks interesting\b",
    r"\blet's (?:talk|chat|set (?:up|something up)|schedule|do it|connect|book|find a time|meet|hop on)\b",
    r"\b(?:happy|glad|keen|open) to (?:chat|talk|connect|hop|meet|learn|take a look|have a look|hear)\b",
    # "set up a call", "book a quick demo", "schedule a 30 minute call"
    r"\b(?:book|schedule|set up|arrange|find) (?:a |some )?(?:(?:quick|short|brief|\d+[- ]?min(?:ute)?s?) )?"
    r"(?:call|meeting|demo|time|slot|chat)\b",
    r"\b(?:send|share) (?:me |us )?(?:over )?(?:some |a few )?times\b", r"\btimely\b",
    r"\b(?:i'?d|i would|we'?d|we would) like to (?:learn|hear|see|know) more\b",
    r"\bwould love to\b", r"\bcalendar link\b", r"\bgrab a (?:slot|time)\b",
    r"\blove to (?:learn|hear|see|chat)\b", r"\btell me more\b", r"\bi'm in\b",
    r"\bcount (?:me|us) in\b", r"\bcalendly\b", r"\bmy calendar\b", r"\b(?:works|work) for me\b",
    r"\b(?:i am|i'm|we are|we're) (?:free|available) (?:on|next|this|tomorrow|monday|tuesday|wednesday|thursday"
    r"|friday)\b", r"\bhow about (?:monday|tuesday|wednesday|thursday|friday|next week|tomorrow)\b",
    r"\bsend (?:me |us )?(?:over )?(?:a |the |some )?(?:invite|calendar invite)\b", r"\bworth a (?:chat|call|look)\b",
    r"\bgerne\b", r"\bklingt (?:gut|interessant|spannend|super|vielversprechend)\b", r"\binteressiert\b",
    r"\binteresse\b", r"\bterminvorschl", r"\blassen sie uns\b", r"\btelefonieren\b", r"\bpasst mir\b",
    r"\bwürde mich freuen\b", r"\bmehr erfahren\b", r"\bgespräch\b",
    r"\bintéress", r"\bvolontiers\b", r"\bavec plaisir\b", r"\bça m'intéresse\b", r"\bprenons rendez-vous\b",
    r"\bme interesa\b", r"\binteresad[oa]\b", r"\bcon gusto\b", r"\bhablemos\b", r"\bagendemos\b",
    r"\bme parece (?:bien|interesante)\b", r"\bperfecto\b", r"\bllamada\b",
    r"\bvolentieri\b", r"\bmi interessa\b", r"\binteressante\b", r"\bfissiamo\b", r"\bsentiamoci\b",
    r"\bchiamata\b", r"\bgraag\b", r"\bklinkt (?:goed|interessant)\b", r"\blaten we\b", r"\bbelletje\b",
    r"\bafspraak\b", r"\bprima\b", r"\bótimo\b", r"\btenho interesse\b", r"\bvamos marcar\b",
    r"\binteressad[oa]\b", r"\bchamada\b", r"\breunião\b", r"\bappel\b", r"\bcalons\b",
)

# Questions and referrals: a human reply that is neither a yes nor a no.
_NEUTRAL = _rx(
    r"\b(?:the )?right person\b", r"\bbetter (?:person|contact)\b", r"\breach out to\b",
    r"\b(?:contact|talk to|speak (?:to|with)|email|ping) (?:my colleague|our|him|her|them)\b",
    r"\bforward(?:ed|ing)? (?:this|your|it)\b", r"\bcc(?:'?d|'?ing)\b", r"\blooping in\b", r"\bin charge of\b",
    r"\bresponsible for\b", r"\bno longer (?:with|at|works?|working)\b", r"\bleft the company\b",
    r"\bhow much\b", r"\bpricing\b", r"\bwhat (?:does|do|is|are) (?:it|this|you|your)\b", r"\bcost\b",
    r"\bwho (?:are you|gave you)\b", r"\bhow did you get\b", r"\bcan you (?:explain|clarify|send)\b",
    r"\bzuständig\b", r"\bansprechpartner(?:in)?\b", r"\bweitergeleitet\b", r"\bkolleg(?:e|in|en)\b",
    r"\bnicht mehr (?:im unternehmen|bei)\b", r"\bwenden sie sich\b", r"\bwas kostet\b", r"\bpreis",
    r"\bwie funktioniert\b",
    r"\bla bonne personne\b", r"\btransféré\b", r"\bcollègue\b", r"\bcombien\b", r"\btarif",
    r"\bla persona (?:adecuada|indicada|correcta)\b", r"\breenviado\b", r"\bcompañer[oa]\b", r"\bencargad[oa]\b",
    r"\bcuánto cuesta\b", r"\bprecio\b",
    r"\bquanto costa\b", r"\bprezz", r"\bcollega\b", r"\bresponsabile\b", r"\bwat kost\b", r"\bcollega's?\b",
    r"\bverantwoordelijk\b", r"\bquanto custa\b", r"\bpreço\b", r"\bcolega\b", r"\bresponsável\b",
)

def _score(pattern: re.Pattern[str], text: str) -> int:
    return sum(1 for _ in pattern.finditer(text))


def _auto_reply(*, reason: str, stop: bool, subject: str, body: str, headers: dict[str, str], today: dt.date,
                language: str, date_language: str) -> ReplyClassification:
    """An automatic reply: an absence (ooo, with its return date) or not (a ticket acknowledgement)."""
    if is_absence(subject=subject, text=body, headers=headers):
        confidence = 0.97 if reason not in ("subject", "wording") else 0.93  # a header is the surest sign
        back = read_return_date(body, today=today, language=date_language)
        reasons = ("auto_reply", reason, *(("weekday_mismatch",) if back.review_reason else ()))
        return ReplyClassification("ooo", confidence, stop, back.date, "rules", reasons, kind="auto_reply",
                                   language=language, review_reason=back.review_reason)
    return ReplyClassification("", 0.9, stop, None, "rules", ("auto_reply", reason), kind="auto_reply",
                               language=language)


def _human_label(body: str) -> tuple[str, float, str]:
    negative = _score(_NEGATIVE, body)
    masked = _NEGATIVE.sub(" ", body)
    positive = _score(_POSITIVE, masked)
    # A question mark alone is weak evidence: "are you free on Wednesday?" is logistics of a yes.
    neutral = _score(_NEUTRAL, masked) + (0.5 if "?" in body else 0)
    scores = {"negative": negative * 1.5, "positive": float(positive), "neutral": neutral}
    if not any(scores.values()):
        # Nothing recognisable: a human wrote something we cannot read. Neutral is the label that
        # moves the plan least (no hot follow-up, no stop by a decline).
        return "neutral", 0.4, "no_keywords"
    # Ties: a decline outranks interest (sending a hot follow-up to a "no" is the worse mistake), and
    # a referral or question outranks a polite keyword like "gerne".
    order = {"negative": 0, "neutral": 1, "positive": 2}
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
    (label, top), (_, second) = ranked[0], ranked[1]
    margin = (top - second) / (top + second + 1.0)
    return label, round(min(0.92, 0.55 + 0.4 * margin), 2), f"scores:{label}={top:g}"


def classify_reply_rules(*, subject: str, text: str, headers: dict[str, str], today: dt.date,
                         html_text: str = "", language: str | None = None, sender: str = "") -> ReplyClassification:
    """The offline classifier. Order matters: the stop request is decided first, on every part and in
    every language, and is kept whatever follows; then auto-reply (headers, subject, unambiguous wording);
    then a human reply's label by keyword scores (a vacation mentioned by a person does not make it ooo).

    `text` is the reply's text (the quote is stripped here too); `html_text` the HTML part as text."""
    new = new_text(text or "") or new_text(html_text or "")
    body = flatten(new)
    if language is None:
        language = detect_language(new)
    # British senders write dates day-first like the rest of Europe.
    date_language = "en-gb" if language == "en" and sender.endswith(".uk") else language
    stop = stop_requested(subject=subject or "", texts=[new, new_text(html_text or "")])
    reason = auto_reply_reason(headers=headers, subject=subject or "", text=new)
    if reason:
        return _auto_reply(reason=reason, stop=stop, subject=subject or "", body=new, headers=headers, today=today,
                           language=language, date_language=date_language)
    if stop:
        return ReplyClassification("negative", 0.95, True, None, "rules", ("stop_phrase",), language=language)
    label, confidence, why = _human_label(body)
    return ReplyClassification(label, confidence, False, None, "rules", (why,), language=language)
