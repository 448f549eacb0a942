"""The built-in planner's copy: whole sentences written per language (campaigns/sequence_copy/<lang>.json).

A language file holds, for each line of each touch, a few variants written as a native speaker would
write them. A variant names the facts it needs as `$slots` (`$company`, `$pain`, `$ask`, ...); the writer
only picks among variants whose slots are all known, so a missing fact drops a sentence instead of leaving
a hole, and no slot ever carries words of another language: the slots are proper nouns (names, company)
or phrases the same file translates (pains, teams, industries, asks, pilots). Free text from the brief
(the offer, a pain the AI analysis wrote) only fills a slot when it is written in the contact's language.

The variant is chosen by a hash of the contact's seed and the line, so a re-run writes the same email and
contacts of one campaign get different ones. A word limit drops optional lines, last first.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from campaigns.language_guess import SUPPORTED_LANGUAGES, base_language

_COPY_DIR = Path(__file__).resolve().parent / "sequence_copy"
FALLBACK_LANGUAGE = "en"

# Each touch: paragraphs of (line key, required). A required line always has a variant needing only
# slots that are always known (`ask`); an optional one is dropped when its slots are unknown or the word
# limit needs the room.
REQUIRED, OPTIONAL = True, False
TOUCH_LINES: dict[str, list[list[tuple[str, bool]]]] = {
    "intro": [[("intro_open", REQUIRED), ("intro_pain", OPTIONAL), ("intro_offer", OPTIONAL)],
              [("intro_angle", OPTIONAL), ("intro_pilot", OPTIONAL)], [("intro_ask", REQUIRED)]],
    "proof": [[("proof_open", REQUIRED), ("proof_body", REQUIRED)], [("proof_pilot", OPTIONAL)],
              [("proof_ask", REQUIRED)]],
    "question": [[("question_open", OPTIONAL), ("question_body", REQUIRED)], [("question_close", OPTIONAL)]],
    "value": [[("value_open", REQUIRED), ("value_tip", REQUIRED)], [("value_ask", REQUIRED)]],
    "breakup": [[("breakup_body", REQUIRED)], [("breakup_close", REQUIRED)]],
    "hot": [[("hot_body", REQUIRED), ("hot_pilot", OPTIONAL)], [("hot_ask", REQUIRED)]],
}


@functools.cache
def language_book(language: str) -> Mapping[str, Any]:
    """The copy of one supported language (FileNotFoundError for any other)."""
    return json.loads((_COPY_DIR / f"{language}.json").read_text(encoding="utf-8"))


def copy_language(requested: str) -> str:
    """The language the planner writes in for a contact's language code: itself when supported, else English."""
    base = base_language(requested)
    return base if base in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


def pick(options: list[str], seed: str, salt: str) -> str:
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


# Lines where the variant using the most facts wins outright (the proof point is where the contact's role
# and pain meet); elsewhere any variant using a fact may be picked, for variety.
MOST_SPECIFIC = frozenset({"proof_body"})


def _usable(variants: list[str], slots: Mapping[str, str], *, most_specific: bool = False) -> list[str]:
    """Variants whose slots are all known; those that use a fact first (a generic line is the last resort)."""
    usable = [v for v in variants if all(slots.get(name) for name in string.Template(v).get_identifiers())]
    specific = [v for v in usable if string.Template(v).get_identifiers()]
    if most_specific and specific:
        most = max(len(string.Template(v).get_identifiers()) for v in specific)
        specific = [v for v in specific if len(string.Template(v).get_identifiers()) == most]
    return specific or usable


def render_line(variants: list[str], slots: Mapping[str, str], seed: str, salt: str) -> str:
    """One variant with all its slots known, filled in; "" when there is none."""
    usable = _usable(variants, slots, most_specific=salt.rsplit(":", 1)[-1] in MOST_SPECIFIC)
    return string.Template(pick(usable, seed, salt)).substitute(slots) if usable else ""


@dataclasses.dataclass(frozen=True)
class Letter:
    """What frames every email of one contact: the greeting and the signature lines."""

    greeting: str
    signature: tuple[str, ...]


def _word_count(text: str) -> int:
    return len(text.split())


def _assemble(letter: Letter, paragraphs: list[list[tuple[str, bool, str]]]) -> str:
    blocks = [" ".join(text for _key, _req, text in para if text) for para in paragraphs]
    body = [letter.greeting, ""]
    for block in blocks:
        if block:
            body += [block, ""]
    return "\n".join(body + list(letter.signature)).strip()


def render_touch(*, book: Mapping[str, Any], touch: str, slots: Mapping[str, str], letter: Letter, seed: str,
                 word_limit: int | None = None) -> str:
    """The text of one touch; with a word limit, optional lines go (last first) until it holds."""
    lines = book["lines"]
    paragraphs = [[(key, required, render_line(lines.get(key, []), slots, seed, f"{touch}:{key}"))
                   for key, required in para] for para in TOUCH_LINES[touch]]
    text = _assemble(letter, paragraphs)
    optional = [(p, i) for p, para in enumerate(paragraphs) for i, (_k, req, t) in enumerate(para) if t and not req]
    while word_limit and _word_count(text) > word_limit and optional:
        p, i = optional.pop()
        key, required, _text = paragraphs[p][i]
        paragraphs[p][i] = (key, required, "")
        text = _assemble(letter, paragraphs)
    return text


def render_subject(*, book: Mapping[str, Any], slots: Mapping[str, str], seed: str) -> str:
    return render_line(book["subjects"], slots, seed, "subject")
