"""Checks on the words of a plan, beyond what the DSL validator checks: AI copy is untrusted input.

`copy_problems` returns problems in the validator's shape ({"path", "message"}), so plan generation
treats a guard failure exactly like a validation error: the model gets one repair round seeing them,
and the fallback planner takes over if they remain.

Guards:
- no unfilled placeholders: `{{first_name}}`, `{company}`, `[First Name]`, `<name>`, `%FIRSTNAME%`;
- length: cold-email subjects and bodies far shorter than the DSL's hard limits (a 20,000-character
  first email is a bug, not a style);
- links only to the campaign's allowed domains (or their subdomains); no link at all when none are
  allowed;
- names: a greeting names the contact (by first name, or honorific + last name, "Dear Dr. Turing") and
  nobody else; an honorific typed into the first name ("Dr. Alan") is read as one, so "Hi Dr. Alan,"
  and "Hi Alan," both pass;
- personalisation: the first email names the contact (or their company) and one fact of the lead (its
  name, a pain or an angle of the analysis);
- one clear ask: the first email asks something (a question), and no email asks more than two;
- spam and formatting: a score of spam phrases, SHOUTED words and exclamation marks, refused from 4;
- language: an email recognisably written in another of the planner's languages than the contact's;
- a word limit the campaign's instructions set.

Every problem names its rule and node (`rule`, `node` keys, and in the message) besides its path.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from campaigns.language_guess import SUPPORTED_LANGUAGES, base_language, guess_language
from campaigns.sequence_facts import honorific_key, person_name

MAX_SUBJECT_CHARS = 120
MAX_TEXT_CHARS = 3_000
MIN_TEXT_CHARS = 20

_PLACEHOLDERS = [
    (re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S), "a template placeholder like {{first_name}}"),
    (re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_ .-]{0,40}\s*\}"), "a placeholder like {company}"),
    (re.compile(r"\[\s*(?:your|first|last|full|company|contact|recipient|prospect|sender|insert|name|title|"
                r"job|role|date|day|time|link|url|calendar|meeting|product|industry|pain|x{2,})\b[^\]]{0,40}\]",
                re.I), "a placeholder like [First Name]"),
    (re.compile(r"<\s*(?:your |first |last |full |company |contact |recipient )?(?:name|company|title|"
                r"first_?name|last_?name|link|url|date)\s*>", re.I), "a placeholder like <name>"),
    (re.compile(r"%[A-Z_]{3,}%"), "a mail-merge field like %FIRSTNAME%"),
    (re.compile(r"\bXXX+\b|\bTBD\b|\blorem ipsum\b", re.I), "filler text (XXX / TBD / lorem ipsum)"),
]

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_HREF = re.compile(r"""href\s*=\s*["']?([^"'\s>]+)""", re.I)

_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|day)|hallo|guten (?:tag|morgen)|liebe[rs]?|"
    r"sehr geehrte[rs]?|moin|servus|bonjour|salut|cher|chère|hola|estimad[oa]s?|buenos días|olá|ola|oi|"
    r"prezad[oa]s?|car[oa]|bom dia|boa tarde|beste|hoi|goedendag|goedemorgen|geachte|buongiorno|ciao|"
    r"gentile|salve)(?![\w-])[ ,]*(?P<rest>[^\n]*)",
    re.I,
)
# Words that may follow a greeting without naming anyone.
_NO_NAME = {"there", "team", "all", "everyone", "folks", "again", "zusammen", "tout", "le", "la", "à", "a",
            "todos", "equipo", "und", "and", "damen", "herren", "sir", "madam", "colleagues", "kollegen",
            "tutti", "allemaal", "equipe", "time", "pessoal"}
SPAM_SCORE_LIMIT = 4
_SPAM_PHRASES = re.compile(
    r"\b(?:act now|100% free|risk[- ]free|guaranteed?|click here|limited time|buy now|order now|winner|"
    r"no obligation|double your|earn \$|cash bonus|urgent|once in a lifetime|special promotion|"
    r"jetzt kaufen|100 % kostenlos|garantiert|offre spéciale|cliquez ici|100 % gratuit|"
    r"haga clic|oferta exclusiva|clique aqui|klik hier|clicca qui)\b",
    re.I)
_SHOUTED = re.compile(r"\b[A-ZÄÖÜÉÈÀ]{4,}\b")
_ACRONYMS = {"SaaS", "B2B", "GDPR", "HTTP", "HTTPS", "HIPAA", "ISO", "SOC", "API", "CRM", "ERP", "KPI", "CEO",
             "CTO", "CFO", "COO", "DSGVO", "RGPD", "LGPD", "NASA", "EMEA", "APAC", "DACH", "SEPA"}


def _problem(path: str, node_id: str, rule: str, message: str) -> dict[str, str]:
    return {"path": path, "message": f"{message} (rule {rule}, node {node_id})", "rule": rule, "node": node_id}


def _norm_name(value: str) -> str:
    name = re.sub(r"[^\w'-]", "", value or "", flags=re.UNICODE).strip("'-").casefold()
    return re.sub(r"'s$", "", name)  # "Dana's team" names Dana


def _host_allowed(host: str, allowed: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    for domain in allowed:
        domain = domain.lower().strip().rstrip(".")
        if domain.startswith("www."):
            domain = domain[4:]
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def _link_hosts(text: str) -> list[str]:
    hosts = []
    for raw in [m.group(0) for m in _URL.finditer(text)] + [m.group(1) for m in _HREF.finditer(text)]:
        if raw.lower().startswith(("mailto:", "tel:", "#")):
            continue
        url = raw if "://" in raw else f"http://{raw}"
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = raw
        if host:
            hosts.append(host)
    return hosts


def _greeting_problem(text: str, first_name: str, last_name: str) -> str | None:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    match = _GREETING.match(first_line)
    if not match:
        return None
    tokens = [_norm_name(t) for t in re.split(r"[\s,!:;.]+", match.group("rest")) if _norm_name(t)]
    if not tokens or tokens[0] in _NO_NAME:
        return None
    name = person_name(first_name, last_name)
    known = {_norm_name(name.given.split(" ")[0]) if name.given else "", _norm_name(name.family.split(" ")[0])
             if name.family else ""} - {""}
    while len(tokens) > 1 and honorific_key(tokens[0]):
        tokens = tokens[1:]  # "Dear Dr. Turing", "Hi Dr. Alan", "Guten Tag Frau Dr. Weber"
    if tokens[0] in known:
        return None
    who = name.given or first_name or "an unknown name"
    return (f"the greeting names {tokens[0]!r}, but the contact is {who!r}; greet the contact by their real "
            "first name")


def _field_problems(path: str, node_id: str, value: str, allowed: list[str]) -> list[dict[str, str]]:
    """Placeholders left in one copy field, and links outside the allowed domains (the first of each)."""
    problems = []
    for pattern, what in _PLACEHOLDERS:
        found = pattern.search(value)
        if found:
            problems.append(_problem(path, node_id, "placeholder",
                                     f"contains {what}: {found.group(0)[:40]!r}; write the real text"))
            break
    for host in _link_hosts(value):
        if not _host_allowed(host, allowed):
            allowed_text = ", ".join(allowed) if allowed else "none (no links allowed)"
            problems.append(_problem(path, node_id, "link_domain",
                                     f"links to {host!r}; allowed link domains: {allowed_text}"))
            break
    return problems


def spam_score(text: str) -> tuple[int, list[str]]:
    """Spam phrases (2 each), SHOUTED words and exclamation marks beyond the first (1 each), with what counted."""
    found = [f"spam phrase {m.group(0)!r}" for m in _SPAM_PHRASES.finditer(text)]
    shouted = [w for w in _SHOUTED.findall(text) if w not in _ACRONYMS and w.upper() not in _ACRONYMS]
    exclamations = max(0, text.count("!") - 1)
    score = 2 * len(found) + len(shouted) + exclamations
    return score, found + [f"shouted {w!r}" for w in shouted[:3]] + (
        [f"{exclamations + 1} exclamation marks"] if exclamations else [])


@dataclasses.dataclass(frozen=True)
class Audience:
    """Who the copy is for: what the checks compare it with."""

    first_name: str = ""
    last_name: str = ""
    company: str = ""
    lead_facts: tuple[str, ...] = ()
    language: str = ""
    word_limit: int | None = None


def _words_of(text: str) -> set[str]:
    return {_norm_name(t) for t in re.split(r"[\s,!:;.?¿¡()]+", text) if _norm_name(t)}


_COMMON = frozenset("about after their there these those which while would could should other every "
                    "team teams company business process processes".split())


def _fact_words(facts: Iterable[str]) -> set[str]:
    """Distinctive words of the lead's facts: a model paraphrases a pain, but keeps its key word."""
    return {w for fact in facts for w in _words_of(fact) if len(w) >= 4 and w not in _COMMON}


def _company_words(company: str) -> set[str]:
    """Every word of the company's name counts, short ones too ("VW", "3M")."""
    return {w for w in _words_of(company) if w not in _COMMON}


def _personalisation_problems(path: str, node_id: str, text: str, audience: Audience) -> list[dict[str, str]]:
    """`text`: the first email's subject and body. Its name (or company), and one fact of the lead."""
    name = person_name(audience.first_name, audience.last_name)
    words = _words_of(text)
    names = [n for n in (name.given.split(" ")[0] if name.given else "", name.family) if n]
    named = any(_norm_name(n.split(" ")[-1]) in words for n in names)
    company = _company_words(audience.company)
    problems = []
    # Only a known first name makes a name required ("Hi there," is right when we do not know it).
    if name.given and not named and not company & words:
        problems.append(_problem(path, node_id, "personalisation",
                                 f"the first email does not address the contact by name ({names[0]!r})"))
    facts = [f.strip() for f in (audience.company, *audience.lead_facts) if f and f.strip()]
    fact_words = company | _fact_words(audience.lead_facts)
    if fact_words and not fact_words & words:
        problems.append(_problem(path, node_id, "personalisation",
                                 f"the first email uses no fact of the lead (e.g. {facts[0]!r})"))
    return problems


def _language_problem(path: str, node_id: str, text: str, language: str) -> dict[str, str] | None:
    wanted = base_language(language)
    if wanted not in SUPPORTED_LANGUAGES:
        return None
    written = guess_language(text)
    if written in ("unknown", wanted):
        return None
    return _problem(path, node_id, "language",
                    f"the email is written in {written!r}; the contact's language is {wanted!r}")


def _text_problems(path: str, node_id: str, text: str, *, subject: str, is_first_email: bool,
                   audience: Audience) -> list[dict[str, str]]:
    """Length, greeting, asks, spam, language and (in the first email) personalisation of a message's text."""
    problems = []
    if len(text) > MAX_TEXT_CHARS:
        problems.append(_problem(path, node_id, "length",
                                 f"text is {len(text)} characters; keep it under {MAX_TEXT_CHARS}"))
    elif len(text.strip()) < MIN_TEXT_CHARS:
        problems.append(_problem(path, node_id, "length", "text is too short to be an email"))
    if audience.word_limit and len(text.split()) > audience.word_limit:
        problems.append(_problem(path, node_id, "word_limit", f"text has {len(text.split())} words; the campaign "
                                 f"asks for at most {audience.word_limit}"))
    greeting = _greeting_problem(text, audience.first_name, audience.last_name)
    if greeting:
        problems.append(_problem(path, node_id, "greeting", greeting))
    questions = text.count("?")
    if questions > 2:
        problems.append(_problem(path, node_id, "one_ask", f"asks {questions} questions; keep to one clear ask"))
    elif is_first_email and questions == 0:
        problems.append(_problem(path, node_id, "one_ask", "the first email asks nothing; end with one clear ask"))
    score, why = spam_score(text)
    if score >= SPAM_SCORE_LIMIT:
        problems.append(_problem(path, node_id, "spam_score", f"spam and formatting score {score} "
                                 f"(limit {SPAM_SCORE_LIMIT - 1}): {', '.join(why)}"))
    wrong_language = _language_problem(path, node_id, text, audience.language)
    if wrong_language:
        problems.append(wrong_language)
    if is_first_email:
        problems += _personalisation_problems(path, node_id, f"{subject}\n{text}", audience)
    return problems


def copy_problems(
    *,
    plan: Mapping[str, Any],
    first_name: str = "",
    last_name: str = "",
    allowed_link_domains: Iterable[str] = (),
    company: str = "",
    lead_facts: Iterable[str] = (),
    language: str = "",
    word_limit: int | None = None,
) -> list[dict[str, str]]:
    """Every copy problem of a (schema-valid) plan, as {"path", "message", "rule", "node"} dicts; [] when clean."""
    allowed = [d for d in allowed_link_domains if d]
    audience = Audience(first_name=first_name, last_name=last_name, company=company,
                        lead_facts=tuple(f for f in lead_facts if f), language=language, word_limit=word_limit)
    problems: list[dict[str, str]] = []
    start_id = plan.get("startNodeId")
    for index, node in enumerate(plan.get("nodes") or []):
        if not isinstance(node, Mapping) or node.get("type") != "send":
            continue
        node_id = str(node.get("id", index))
        message = node.get("message") or {}
        base = f"nodes[{index}].message"
        for key in ("subject", "text", "html"):
            if isinstance(message.get(key), str):
                problems += _field_problems(f"{base}.{key}", node_id, message[key], allowed)
        subject = message.get("subject")
        if isinstance(subject, str) and len(subject) > MAX_SUBJECT_CHARS:
            problems.append(_problem(f"{base}.subject", node_id, "length",
                                     f"subject is {len(subject)} characters; keep it under {MAX_SUBJECT_CHARS}"))
        text = message.get("text")
        if isinstance(text, str):
            problems += _text_problems(f"{base}.text", node_id, text, subject=str(subject or ""),
                                       is_first_email=node.get("id") == start_id, audience=audience)
    return problems
