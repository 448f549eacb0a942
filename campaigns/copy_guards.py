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
- names: a greeting names the contact (by first name, or salutation + last name) and nobody else; the
  first email mentions the contact's first name when we know it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

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
    r"sehr geehrte[rs]?|moin|servus|bonjour|salut|cher|chère|hola|estimad[oa]|buenos días)\b[ ,]*"
    r"(?P<rest>[^\n]*)",
    re.I,
)
_SALUTATIONS = {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "monsieur", "madame", "señor", "señora",
                "sr", "sra"}
# Words that may follow a greeting without naming anyone.
_NO_NAME = {"there", "team", "all", "everyone", "folks", "again", "zusammen", "tout", "le", "la", "à", "a",
            "todos", "equipo", "und", "and", "damen", "herren", "sir", "madam", "colleagues", "kollegen"}


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
    first, last = _norm_name(first_name.split(" ")[0] if first_name else ""), _norm_name(last_name)
    name = tokens[0]
    if name in _SALUTATIONS and len(tokens) > 1:
        name = tokens[1]
        if name in {first, last} and name:
            return None
    elif first and name == first:
        return None
    who = first_name or "an unknown name"
    return f"the greeting names {name!r}, but the contact is {who!r}; greet the contact by their real first name"


def _field_problems(path: str, value: str, allowed: list[str]) -> list[dict[str, str]]:
    """Placeholders left in one copy field, and links outside the allowed domains (the first of each)."""
    problems = []
    for pattern, what in _PLACEHOLDERS:
        found = pattern.search(value)
        if found:
            problems.append({"path": path, "message": f"contains {what}: {found.group(0)[:40]!r}; write the real text"})
            break
    for host in _link_hosts(value):
        if not _host_allowed(host, allowed):
            allowed_text = ", ".join(allowed) if allowed else "none (no links allowed)"
            problems.append({"path": path, "message": f"links to {host!r}; allowed link domains: {allowed_text}"})
            break
    return problems


def _text_problems(path: str, text: str, *, is_first_email: bool, first_name: str, last_name: str
                   ) -> list[dict[str, str]]:
    """Length, greeting and (in the first email) the contact's name of a message's text."""
    problems = []
    if len(text) > MAX_TEXT_CHARS:
        problems.append({"path": path, "message": f"text is {len(text)} characters; keep it under {MAX_TEXT_CHARS}"})
    elif len(text.strip()) < MIN_TEXT_CHARS:
        problems.append({"path": path, "message": "text is too short to be an email"})
    greeting = _greeting_problem(text, first_name, last_name)
    if greeting:
        problems.append({"path": path, "message": greeting})
    if is_first_email and first_name and _norm_name(first_name.split(" ")[0]) not in {
        _norm_name(t) for t in re.split(r"[\s,!:;.?]+", text)
    }:
        problems.append({"path": path,
                         "message": f"the first email does not address the contact by name ({first_name!r})"})
    return problems


def copy_problems(
    *,
    plan: Mapping[str, Any],
    first_name: str = "",
    last_name: str = "",
    allowed_link_domains: Iterable[str] = (),
) -> list[dict[str, str]]:
    """Every copy problem of a (schema-valid) plan, as {"path", "message"} dicts; [] when clean."""
    allowed = [d for d in allowed_link_domains if d]
    problems: list[dict[str, str]] = []
    start_id = plan.get("startNodeId")
    for index, node in enumerate(plan.get("nodes") or []):
        if not isinstance(node, Mapping) or node.get("type") != "send":
            continue
        message = node.get("message") or {}
        base = f"nodes[{index}].message"
        for key in ("subject", "text", "html"):
            if isinstance(message.get(key), str):
                problems += _field_problems(f"{base}.{key}", message[key], allowed)
        subject = message.get("subject")
        if isinstance(subject, str) and len(subject) > MAX_SUBJECT_CHARS:
            problems.append({"path": f"{base}.subject",
                             "message": f"subject is {len(subject)} characters; keep it under {MAX_SUBJECT_CHARS}"})
        text = message.get("text")
        if isinstance(text, str):
            problems += _text_problems(f"{base}.text", text, is_first_email=node.get("id") == start_id,
                                       first_name=first_name, last_name=last_name)
    return problems
