"""The rule-based reply classifier: auto-reply headers, OOO wording, opt-out phrases and keyword scores.

It answers offline (no key, or the model failed) and decides the certain signals even when the AI answers
(see messaging.inbound.classification).
"""
from __future__ import annotations

import datetime as dt
import re

from messaging.inbound.labels import ReplyClassification
from messaging.inbound.reply_text import normalise_text, strip_quoted
from messaging.inbound.return_dates import extract_return_date

# --- rule tables --------------------------------------------------------------------------------------
# Patterns run on lower-cased, whitespace-collapsed text. English, German, French and Spanish.


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_AUTO_SUBJECT = _rx(
    r"\bout of (?:the )?office\b", r"\bautomatic reply\b", r"\bauto(?:matic)?[- ]?(?:reply|response)\b",
    r"\bautoreply\b", r"\bok\b.{0,3}\booo\b", r"^\s*ooo\b", r"\babsence\b", r"\bvacation\b", r"\bholiday\b",
    r"\babwesen(?:d|heit)", r"\bautomatische antwort\b", r"\babwesenheitsnotiz\b", r"\burlaub\b",
    r"\bréponse automatique\b", r"\breponse automatique\b", r"\babsent(?:e)?\b",
    r"\brespuesta automática\b", r"\brespuesta automatica\b", r"\bfuera de la oficina\b", r"\bausente\b",
)

# Strong out-of-office wording in the body.
_OOO_BODY = _rx(
    r"\bout of (?:the )?office\b", r"\bi am (?:currently )?(?:away|out)\b", r"\bi'm (?:currently )?(?:away|out)\b",
    r"\bon (?:annual |parental |maternity |paternity |sick |medical |sabbatical |business )?leave\b",
    r"\b(?:currently )?on (?:vacation|holiday|holidays|pto|sabbatical)\b", r"\bwith limited access to (?:e-?mail|my)",
    r"\blimited (?:access to )?e-?mail\b", r"\baway from (?:the|my) (?:office|desk)\b",
    r"\bthis is an auto(?:mated|matic)?[- ]?(?:reply|response|message)\b", r"\bautomatic reply\b",
    r"\bno longer (?:monitor|check)(?:ing|ed)? this (?:inbox|mailbox|address)\b",
    r"\bthank you for your (?:e-?mail|message)\b.{0,40}\b(?:i am|i'm|i will be)\b.{0,30}"
    r"\b(?:away|out|off|travel(?:l)?ing|on)\b",
    r"\bbin (?:ich )?(?:derzeit |aktuell |zurzeit |bis )?.{0,40}\b(?:abwesend|nicht im büro|im urlaub|außer haus)",
    r"\babwesend\b", r"\babwesenheit\b", r"\bnicht im büro\b", r"\bim urlaub\b", r"\burlaubsbedingt\b",
    r"\baußer haus\b", r"\bin elternzeit\b", r"\beingeschränkt erreichbar\b", r"\bnicht erreichbar\b",
    r"\bautomatische antwort\b",
    r"\bsuis (?:actuellement )?(?:absent|absente|en congé|en vacances)\b", r"\ben congés?\b",
    r"\bréponse automatique\b", r"\babsente? du bureau\b",
    r"\bfuera de la oficina\b", r"\bestoy (?:de vacaciones|fuera|ausente)\b", r"\brespuesta automática\b",
)

_STOP = _rx(
    # English
    r"\bunsubscribe\b", r"\bremove me\b", r"\bremove (?:my|this) (?:e-?mail|address|name|contact)",
    r"\btake me off\b", r"\btake (?:my|this) (?:e-?mail|address|name) off\b",
    r"\bstop (?:e-?mailing|contacting|sending|writing|messaging|spamming|reaching out)\b",
    r"\b(?:do not|don't|dont|never) (?:e-?mail|contact|write to|message|spam) (?:me|us)\b",
    r"\b(?:do not|don't|dont) reach out (?:to (?:me|us) )?again\b",
    r"\bno (?:more|further) (?:e-?mails|emails|messages|contact)\b", r"\bopt (?:me )?out\b",
    r"\bleave me alone\b", r"\bcease (?:all )?(?:contact|communication)", r"^stop[.!]*$",
    r"\bplease stop\b", r"\bspam(?:ming)? me\b", r"\boff your (?:mailing )?list\b",
    # German
    r"\babmelden\b", r"\bmelden sie mich ab\b", r"\baustragen\b", r"\btragen sie mich\b.{0,30}\baus\b",
    r"\bnicht (?:mehr|weiter) (?:kontaktieren|anschreiben|anrufen|schreiben|mailen|belästigen)\b",
    r"\bkontaktieren sie mich (?:bitte )?nicht\b", r"\bschreiben sie mir (?:bitte )?nicht mehr\b",
    r"\bkeine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung|kontaktaufnahmen?)\b",
    r"\baus (?:ihrem|dem|ihrer|der) (?:verteiler|liste|e-?mail-?liste|datenbank)\b",
    r"\b(?:entfernen|löschen) sie (?:mich|meine)\b", r"\bunterlassen sie\b",
    # French
    r"\bdésabonn", r"\bdesabonn", r"\bdésinscri", r"\bdesinscri",
    r"\bne (?:plus|pas) me (?:contacter|écrire|recontacter|solliciter)\b", r"\bne plus (?:me )?contacter\b",
    r"\bretirez[- ]moi\b", r"\bsupprimez[- ]moi\b", r"\barrêtez de m'(?:écrire|envoyer|contacter)",
    # Spanish
    r"\bdar(?:me)? de baja\b", r"\bdéjenme de\b", r"\bno me (?:vuelva[ns]? a )?(?:contacte[ns]?|escriba[ns]?)\b",
    r"\bdej(?:en|e) de (?:escribir|enviar|contactar)", r"\belimín(?:e|en)me\b", r"\beliminarme de\b",
)

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
    r"\bwould love to\b", r"\blove to (?:learn|hear|see|chat)\b", r"\btell me more\b", r"\bi'm in\b",
    r"\bcount (?:me|us) in\b", r"\bcalendly\b", r"\bmy calendar\b", r"\b(?:works|work) for me\b",
    r"\b(?:i am|i'm|we are|we're) (?:free|available) (?:on|next|this|tomorrow|monday|tuesday|wednesday|thursday"
    r"|friday)\b", r"\bhow about (?:monday|tuesday|wednesday|thursday|friday|next week|tomorrow)\b",
    r"\bsend (?:me |us )?(?:over )?(?:a |the |some )?(?:invite|calendar invite)\b", r"\bworth a (?:chat|call|look)\b",
    r"\bgerne\b", r"\bklingt (?:gut|interessant|spannend|super|vielversprechend)\b", r"\binteressiert\b",
    r"\binteresse\b", r"\bterminvorschl", r"\blassen sie uns\b", r"\btelefonieren\b", r"\bpasst mir\b",
    r"\bwürde mich freuen\b", r"\bmehr erfahren\b", r"\bgespräch\b",
    r"\bintéress", r"\bvolontiers\b", r"\bavec plaisir\b", r"\bça m'intéresse\b", r"\bprenons rendez-vous\b",
    r"\bme interesa\b", r"\binteresad[oa]\b", r"\bcon gusto\b", r"\bhablemos\b", r"\bagendemos\b",
    r"\bme parece (?:bien|interesante)\b",
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
)

_AUTO_HEADER_NAMES = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-response",
                      "x-mailautoreply", "x-ms-exchange-inbox-rules-loop")


def _auto_reply_header(headers: dict[str, str]) -> str | None:
    """Name of the header that marks this message as machine-sent, if any."""
    auto_submitted = headers.get("auto-submitted", "").lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-submitted"
    if headers.get("precedence", "").lower() in ("auto_reply", "auto-reply", "bulk", "junk"):
        return "precedence"
    for name in _AUTO_HEADER_NAMES:
        if name in headers:
            return name
    # Outlook sets X-Auto-Response-Suppress on its own automatic replies (OOF = out of facility).
    if "oof" in headers.get("x-auto-response-suppress", "").lower():
        return "x-auto-response-suppress"
    return None


def _score(pattern: re.Pattern[str], text: str) -> int:
    return sum(1 for _ in pattern.finditer(text))


def classify_reply_rules(*, subject: str, text: str, headers: dict[str, str], today: dt.date) -> ReplyClassification:
    """The offline classifier: auto-reply headers, OOO wording, opt-out phrases, keyword scores."""
    body = normalise_text(strip_quoted(text))
    subj = normalise_text(re.sub(r"^\s*(?:(?:re|aw|wg|fw|fwd|tr|rv|antw)\s*:\s*)+", "", subject or "", flags=re.I))
    reasons: list[str] = []

    header = _auto_reply_header(headers)
    ooo_subject = bool(_AUTO_SUBJECT.search(subj))
    ooo_body = _score(_OOO_BODY, body)
    if header:
        reasons.append("auto_reply_header")
        return ReplyClassification("ooo", 0.97, False, extract_return_date(text, today=today), "rules",
                                   tuple(reasons + [header]))

    stop = bool(_STOP.search(body))
    negative = _score(_NEGATIVE, body)
    masked = _NEGATIVE.sub(" ", body)
    positive = _score(_POSITIVE, masked)
    # A question mark alone is weak evidence: "are you free on Wednesday?" is logistics of a yes.
    neutral = _score(_NEUTRAL, masked) + (0.5 if "?" in body else 0)

    # Out-of-office: an auto-reply subject, or OOO wording with no stronger human signal. A human who
    # mentions a vacation while saying yes ("on holiday next week, but let's talk after") stays human.
    if (ooo_subject and ooo_body) or (ooo_subject and not (positive or negative or stop)) or (
        ooo_body and ooo_body >= positive + negative and not stop
    ):
        reasons.append("ooo_subject" if ooo_subject else "ooo_wording")
        confidence = 0.93 if (ooo_subject and ooo_body) else 0.85
        return ReplyClassification("ooo", confidence, False, extract_return_date(text, today=today), "rules",
                                   tuple(reasons))

    if stop:
        reasons.append("stop_phrase")
        return ReplyClassification("negative", 0.95, True, None, "rules", tuple(reasons))

    scores = {"negative": negative * 1.5, "positive": float(positive), "neutral": neutral}
    if not any(scores.values()):
        # Nothing recognisable: a human wrote something we cannot read. Neutral is the label that
        # moves the plan least (no hot follow-up, no stop by a decline).
        return ReplyClassification("neutral", 0.4, False, None, "rules", ("no_keywords",))
    # Ties: a decline outranks interest (sending a hot follow-up to a "no" is the worse mistake), and
    # a referral or question outranks a polite keyword like "gerne".
    order = {"negative": 0, "neutral": 1, "positive": 2}
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
    (label, top), (_, second) = ranked[0], ranked[1]
    margin = (top - second) / (top + second + 1.0)
    confidence = round(min(0.92, 0.55 + 0.4 * margin), 2)
    reasons.append(f"scores:{label}={top:g}")
    return ReplyClassification(label, confidence, False, None, "rules", tuple(reasons))
