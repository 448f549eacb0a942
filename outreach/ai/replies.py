"""Reply classification: positive / negative / neutral / ooo, a stop request, and an OOO return date.

`classify_reply` is the one entry point (inbound reply handling calls it). With an OpenAI key it asks
the model (JSON-schema output); without one, or when the model call fails, a rule-based classifier
answers, so inbound processing never depends on the AI being up. Some signals are decided by rules
even when a key is set, because they are certain and free:

- auto-reply headers (RFC 3834 `Auto-Submitted`, `X-Autoreply`, `Precedence: auto_reply`, ...) mean `ooo`;
- an explicit opt-out phrase ("unsubscribe", "remove me", "nicht mehr kontaktieren") is a stop request
  whatever the model says: honouring a stop we should not have is cheap, missing one is a compliance
  failure.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from outreach import clock

logger = logging.getLogger(__name__)

LABELS = ("positive", "negative", "neutral", "ooo")


@dataclasses.dataclass(frozen=True)
class ReplyClassification:
    label: str  # one of LABELS
    confidence: float  # 0..1
    stop_request: bool = False
    return_date: dt.date | None = None
    source: str = "rules"  # "rules" or "ai"
    reasons: tuple[str, ...] = ()  # which rules fired (for logs and the admin), not part of the contract

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 2),
            "stop_request": self.stop_request,
            "return_date": self.return_date.isoformat() if self.return_date else None,
        }


# --- entry point --------------------------------------------------------------------------------------


def classify_reply(
    *,
    tenant: Any,
    subject: str,
    text: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | str | None,
    received_at: dt.datetime | None = None,
) -> ReplyClassification:
    """Classify one inbound reply. `tenant` may be None (operator tools); it is used for AI accounting.

    `received_at` (optional) anchors relative dates ("back on Monday", "12 December" without a year);
    without it the `Date` header is used, then the clock.
    """
    norm_headers = normalise_headers(headers)
    reference = _reference_date(norm_headers, received_at)
    rules = classify_reply_rules(subject=subject or "", text=text or "", headers=norm_headers, today=reference)

    from outreach.ai import client as ai_client

    if not ai_client.ai_enabled() or "auto_reply_header" in rules.reasons:
        return rules
    try:
        ai = _classify_reply_ai(tenant=tenant, subject=subject or "", text=text or "", today=reference)
    except ai_client.AIError as exc:
        logger.warning("AI reply classification failed, using rules: %s", exc)
        return rules
    if rules.stop_request and not ai.stop_request and ai.label != "ooo":
        ai = dataclasses.replace(ai, stop_request=True, reasons=ai.reasons + ("rules_stop_request",))
    if ai.stop_request and ai.label not in ("negative",):
        # A person asking to stop is declining, whatever else the message says.
        ai = dataclasses.replace(ai, label="negative")
    return ai


# --- AI classifier ------------------------------------------------------------------------------------

REPLY_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["label", "confidence", "stop_request", "return_date"],
    "properties": {
        "label": {"type": "string", "enum": list(LABELS)},
        "confidence": {"type": "number"},
        "stop_request": {"type": "boolean"},
        "return_date": {"type": ["string", "null"], "description": "YYYY-MM-DD or null"},
    },
}

_MAX_AI_TEXT = 6000  # characters of the body sent to the model; replies that matter are short


def _classify_reply_ai(*, tenant: Any, subject: str, text: str, today: dt.date) -> ReplyClassification:
    from outreach.ai import client as ai_client
    from outreach.ai.prompting import load_prompt, render_prompt

    body = strip_quoted(text)[:_MAX_AI_TEXT]
    result = ai_client.complete_json(
        tenant=tenant,
        purpose="reply_classification",
        messages=[
            {"role": "system", "content": load_prompt("reply_classification_system")},
            {"role": "user", "content": render_prompt(
                "reply_classification_user", received_on=today.isoformat(), subject=subject[:300], text=body)},
        ],
        schema=REPLY_JSON_SCHEMA,
        schema_name="reply_classification",
    )
    data = result.data
    if not isinstance(data, dict):
        raise ai_client.AIError(result.parse_error or "model answer is not a JSON object", kind="bad_output")
    label = data.get("label")
    if label not in LABELS:
        raise ai_client.AIError(f"model returned an unknown label {label!r}", kind="bad_output")
    try:
        confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
    except (TypeError, ValueError) as exc:
        raise ai_client.AIError("model returned a non-numeric confidence", kind="bad_output") from exc
    return_date = None
    raw_date = data.get("return_date")
    if label == "ooo" and isinstance(raw_date, str) and raw_date:
        try:
            return_date = plausible_return_date(dt.date.fromisoformat(raw_date[:10]), today=today)
        except ValueError:
            return_date = None
    if label == "ooo" and return_date is None:
        # The model missed, mangled or misread the date: the rules' extraction is deterministic, use it.
        return_date = extract_return_date(text, today=today)
    return ReplyClassification(
        label=label,
        confidence=confidence,
        stop_request=bool(data.get("stop_request")) and label != "ooo",
        return_date=return_date,
        source="ai",
    )


# --- headers and text clean-up ------------------------------------------------------------------------


def normalise_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | str | None) -> dict[str, str]:
    """Lower-cased header names -> value (repeated headers joined with ", ").

    Accepts a mapping, (name, value) pairs, or a raw header block as text (SendGrid Inbound Parse
    posts the headers as one string).
    """
    if not headers:
        return {}
    pairs: Iterable[tuple[str, str]]
    if isinstance(headers, str):
        import email.parser
        import email.policy

        msg = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(headers.strip() + "\n\n")
        pairs = msg.items()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).strip().lower()
        val = str(value).strip()
        out[key] = f"{out[key]}, {val}" if key in out else val
    return out


def _reference_date(headers: dict[str, str], received_at: dt.datetime | None) -> dt.date:
    if received_at is not None:
        return received_at.date()
    raw = headers.get("date")
    if raw:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
            if parsed is not None:
                return parsed.date()
        except (TypeError, ValueError, IndexError):
            pass
    return clock.now().date()


# Where the quoted earlier message starts: everything from here down is not the person's words.
_QUOTE_START = re.compile(
    r"^\s*(?:"
    r"on\b.{0,300}?\bwrote:"  # Gmail/Apple: "On Tue, 3 Dec 2026 at 10:00, Dana <...> wrote:"
    r"|am\b.{0,300}?\bschrieb\b.{0,100}?:"
    r"|le\b.{0,300}?\ba écrit\s*:"
    r"|el\b.{0,300}?\bescribió\s*:"
    r"|-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{2,}"
    r"|_{8,}"  # Outlook's separator line
    r"|(?:from|von|de)\s*:\s.{0,200}\n\s*(?:sent|gesendet|envoyé|enviado|date|datum|to|an|à|para)\s*:"
    r")",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SIGNATURE = re.compile(r"^--\s*$", re.MULTILINE)


def strip_quoted(text: str) -> str:
    """The newest part of a reply: no quoted history, no '>' lines, no '-- ' signature."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    match = _QUOTE_START.search(text)
    if match and match.start() > 0:
        text = text[: match.start()]
    sig = _SIGNATURE.search(text)
    if sig and sig.start() > 0:
        text = text[: sig.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


def _normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


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
    body = _normalise_text(strip_quoted(text))
    subj = _normalise_text(re.sub(r"^\s*(?:(?:re|aw|wg|fw|fwd|tr|rv|antw)\s*:\s*)+", "", subject or "", flags=re.I))
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


# --- return dates -------------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "january jan januar jänner janvier enero ene",
        "february feb februar février fevrier febrero",
        "march mar märz maerz marz mars marzo",
        "april apr avril abril abr",
        "may mai mayo",
        "june jun juni juin junio",
        "july jul juli juillet julio",
        "august aug août aout agosto ago",
        "september sep sept septembre septiembre set",
        "october oct oktober okt octobre octubre",
        "november nov novembre noviembre",
        "december dec dezember dez décembre decembre diciembre dic",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _num)

_WEEKDAYS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "monday montag lundi lunes",
        "tuesday dienstag mardi martes",
        "wednesday mittwoch mercredi miércoles miercoles",
        "thursday donnerstag jeudi jueves",
        "friday freitag vendredi viernes",
        "saturday samstag samedi sábado sabado",
        "sunday sonntag dimanche domingo",
    )
):
    for _name in _names.split():
        _WEEKDAYS[_name] = _num

_MONTH_RX = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_WEEKDAY_RX = "|".join(sorted((re.escape(w) for w in _WEEKDAYS), key=len, reverse=True))

# One date, in the formats people write in auto-replies. Named groups tell the parser which one matched.
_DATE = re.compile(
    r"(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))"
    r"|(?P<dot>(?P<dd>\d{1,2})\.\s?(?P<dm>\d{1,2})\.(?:\s?(?P<dy>\d{4}|\d{2})\b)?)"
    r"|(?P<slash>(?P<sa>\d{1,2})/(?P<sb>\d{1,2})(?:/(?P<sy>\d{4}|\d{2}))?\b)"
    rf"|(?P<dmy>(?P<xd>\d{{1,2}})(?:st|nd|rd|th|\.|er|º)?\s+(?:of\s+|de\s+)?(?P<xm>{_MONTH_RX})\.?"
    r"(?:,?\s+(?:de\s+)?(?P<xy>\d{4}))?)\b"
    rf"|(?P<mdy>(?P<ym>{_MONTH_RX})\.?\s+(?P<yd>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<yy>\d{{4}}))?)"
    rf"|(?P<wd>\b(?P<wname>{_WEEKDAY_RX})\b)",
    re.IGNORECASE,
)

# Words that introduce the day the person is back, and whether the date they introduce is the first
# day back ("back on X") or the last day away ("until X": back the day after).
_RETURN_CUE = re.compile(
    r"(?P<back>\bback (?:in the office |in office |at my desk )?(?:on |by |from )?"
    r"|\breturn(?:ing)? (?:to the office |to work )?(?:on |by )?|\bwill return (?:on )?"
    r"|\bin the office (?:again )?(?:on|from) |\bavailable again (?:on|from) "
    r"|\bzurück (?:am |ab )?|\bwieder (?:im büro |erreichbar |da |zurück )?(?:am |ab )?|\bab dem |\bab (?=\d)"
    r"|\bde retour (?:le |à partir du )?|\bretour (?:prévu )?le |\bà partir du "
    r"|\bregreso (?:el )?|\bvuelvo (?:el )?|\bregresaré (?:el )?|\bestaré de vuelta (?:el )?|\ba partir del )"
    r"|(?P<until>\buntil |\btill |\bthrough |\bthru |\bbis (?:zum |einschließlich |einschl\.? )?|\bbis "
    r"|\bjusqu'au |\bhasta el |\bhasta )",
    re.IGNORECASE,
)


def _resolve_year(month: int, day: int, year: int | None, today: dt.date) -> dt.date | None:
    try:
        if year is not None:
            if year < 100:
                year += 2000
            return dt.date(year, month, day)
        candidate = dt.date(today.year, month, day)
    except ValueError:
        return None
    # No year given: the next occurrence. A date a little in the past (the auto-reply was written
    # before today) is kept; one months ago means next year.
    if candidate < today - dt.timedelta(days=14):
        try:
            candidate = dt.date(today.year + 1, month, day)
        except ValueError:
            return None
    return candidate


def _parse_date_match(match: re.Match[str], today: dt.date, prefer_day_first: bool) -> dt.date | None:
    g = match.groupdict()
    if g["iso"]:
        return _resolve_year(int(g["im"]), int(g["id"]), int(g["iy"]), today)
    if g["dot"]:
        return _resolve_year(int(g["dm"]), int(g["dd"]), int(g["dy"]) if g["dy"] else None, today)
    if g["slash"]:
        a, b = int(g["sa"]), int(g["sb"])
        year = int(g["sy"]) if g["sy"] else None
        if a > 12:
            day, month = a, b
        elif b > 12:
            month, day = a, b
        elif prefer_day_first:
            day, month = a, b
        else:
            month, day = a, b
        return _resolve_year(month, day, year, today)
    if g["dmy"]:
        return _resolve_year(_MONTHS[g["xm"].lower()], int(g["xd"]), int(g["xy"]) if g["xy"] else None, today)
    if g["mdy"]:
        return _resolve_year(_MONTHS[g["ym"].lower()], int(g["yd"]), int(g["yy"]) if g["yy"] else None, today)
    if g["wd"]:
        weekday = _WEEKDAYS[g["wname"].lower()]
        ahead = (weekday - today.weekday()) % 7 or 7
        return today + dt.timedelta(days=ahead)
    return None


# A return date further ahead than this is not believed (a typo, a misread year, a template gone wrong): the
# reply then has no return date. The campaign engine and the events API apply the same bound
# (campaigns.engine.MAX_RETURN_DATE_AHEAD).
MAX_RETURN_DAYS_AHEAD = 180


def plausible_return_date(value: dt.date | None, *, today: dt.date) -> dt.date | None:
    """`value` when it is a return date worth acting on (from `today` to 180 days after it), else None."""
    if value is None:
        return None
    try:
        latest = today + dt.timedelta(days=MAX_RETURN_DAYS_AHEAD)
    except OverflowError:
        latest = dt.date.max
    return value if today <= value <= latest else None


def _parse_date_safely(match: re.Match[str], today: dt.date, prefer_day_first: bool) -> dt.date | None:
    try:
        return _parse_date_match(match, today, prefer_day_first)
    except OverflowError:  # date arithmetic at the ends of the calendar (year 1 or 9999)
        return None


def extract_return_date(text: str, *, today: dt.date) -> dt.date | None:
    """The first day the sender is back, from an out-of-office text, or None.

    Looks for a return cue ("back on", "returning", "zurück am", "until", "bis", "de retour le",
    "hasta el") followed within a few words by a date; "until X" means back on X + 1 day. Without a cue,
    the latest date in the text that is not in the past is taken (OOO notes usually name the span
    "from A to B", and B is the one that matters). A date in the past or more than 180 days after `today`
    is not a return date (`plausible_return_date`).
    """
    body = strip_quoted(text)
    flat = re.sub(r"\s+", " ", unicodedata.normalize("NFC", body))
    # English writes 12/14 month-first; German, French and Spanish write day-first.
    prefer_day_first = bool(re.search(r"\b(?:bin|ich|je|suis|estoy|de retour|zurück|hasta)\b", flat, re.I))
    for cue in _RETURN_CUE.finditer(flat):
        window = flat[cue.end(): cue.end() + 40]
        # Allow a weekday before the date ("back on Monday, 14 December"): try the first real date first.
        matches = [m for m in _DATE.finditer(window)]
        dated = [m for m in matches if not m.group("wd")]
        chosen = dated[0] if dated else (matches[0] if matches and matches[0].start() < 3 else None)
        if chosen is None:
            continue
        # The date must start close to the cue (skip "until I get back on 3/4 of the tasks" style noise).
        if chosen.start() > 25:
            continue
        parsed = _parse_date_safely(chosen, today, prefer_day_first)
        if parsed is not None and cue.group("until"):
            parsed = parsed + dt.timedelta(days=1) if parsed < dt.date.max else None
        parsed = plausible_return_date(parsed, today=today)
        if parsed is None:
            continue
        return parsed
    candidates = []
    for match in _DATE.finditer(flat):
        if match.group("wd"):
            continue
        parsed = plausible_return_date(_parse_date_safely(match, today, prefer_day_first), today=today)
        if parsed is not None:
            candidates.append(parsed)
    return max(candidates) if candidates else None
