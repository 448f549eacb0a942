"""The language of a reply's new text: lingua, low-accuracy mode, limited to the languages we have rules for.

The language chooses the date order (day-first for European senders) and is shown to the operator. It
never decides whether a reply is a stop request: one-word replies are guesses, so stop detection runs
every language's rules whatever is detected (messaging.inbound.stop_phrases).
"""
from __future__ import annotations

import functools

from lingua import Language, LanguageDetectorBuilder

_LANGUAGES = {
    Language.ENGLISH: "en", Language.GERMAN: "de", Language.FRENCH: "fr", Language.SPANISH: "es",
    Language.ITALIAN: "it", Language.DUTCH: "nl", Language.PORTUGUESE: "pt",
}
_MAX_CHARS = 1024  # the first KB decides; the detector is linear but not free


@functools.cache
def _detector():
    return (LanguageDetectorBuilder.from_languages(*_LANGUAGES).with_low_accuracy_mode()
            .with_preloaded_language_models().build())


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language among EN/DE/FR/ES/IT/NL/PT, or "" when it cannot be told."""
    sample = (text or "").strip()[:_MAX_CHARS]
    if len(sample) < 3:
        return ""
    found = _detector().detect_language_of(sample)
    return _LANGUAGES.get(found, "") if found is not None else ""


def warm_up() -> None:
    """Load the language models once (a worker calls this at start; the first detection is otherwise slow)."""
    _detector()
