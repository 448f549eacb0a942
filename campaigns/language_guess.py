"""Which of the planner's languages a short text is written in, from its function words (no model, no data).

Used twice: the built-in planner puts a brief's free text (the offer, a pain) into a sentence only when it
is in the contact's language, and the copy checks flag an AI email written in the wrong language (an
English mail for a German contact). A few common words decide; a text with too few of them is "unknown",
which never counts as a mismatch (a product name or a short noun phrase has no language to speak of).
"""
from __future__ import annotations

import re

SUPPORTED_LANGUAGES = ("en", "de", "fr", "es", "pt", "nl", "it")

_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and that with for this your you our are have would could is it to of we will not a an at "
                    "if on who what how be my me do so or".split()),
    "de": frozenset("und der die das mit für ist nicht ich sie ihr ihnen wir unser eine einen bei zu auf wie "
                    "oder auch sich dass".split()),
    "fr": frozenset("le la les et des une un pour avec est vous nous votre pas que qui sur dans du au ce "
                    "cette".split()),
    "es": frozenset("el la los las y una un para con es usted su sus nuestro que del por en lo este esta "
                    "muy".split()),
    "pt": frozenset("o os as e uma um para com é você seu sua nosso que do da em no na não isso "
                    "mais".split()),
    "nl": frozenset("de het een en van voor met is je jij jullie wij ons niet dat die op bij te naar "
                    "ook".split()),
    "it": frozenset("il la le lo gli una un per con è lei suo sua nostro che del della di non questo "
                    "sono".split()),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_MIN_HITS = 3
_MIN_MARGIN = 2  # the winner needs two function words more than the runner-up (the vocabularies overlap)


def base_language(code: str) -> str:
    """`de-AT`, `DE_ch` -> `de`; "" when not given."""
    return (code or "").strip().lower().replace("_", "-").split("-")[0]


def guess_language(text: str) -> str:
    """The supported language with the most function words in `text`, or "unknown" with fewer than three."""
    scores = _scores(text)
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] < _MIN_HITS or ranked[0] - ranked[1] < _MIN_MARGIN:
        return "unknown"
    return best


def _scores(text: str) -> dict[str, int]:
    words = [w.casefold() for w in _WORD.findall(text or "")]
    return {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}


def written_in(text: str, language: str) -> bool:
    """True unless `text` is recognisably in another supported language than `language`."""
    guessed = guess_language(text)
    return guessed in ("unknown", base_language(language))


def leans_to(text: str, language: str) -> bool:
    """True when `language` has more function words in `text` than any other (a short phrase with one "für"
    is German); a text with none leans to English only, the language briefs are most often written in."""
    scores = _scores(text)
    language = base_language(language)
    own = scores.get(language, 0)
    if own == 0:
        return language == "en" and not any(scores.values())
    return all(own > score for lang, score in scores.items() if lang != language)
