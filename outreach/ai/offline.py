"""Offline answers to the AI's prompts: what a (very predictable) model would say, without one.

The demo runs the whole AI path against an OpenAI-compatible stub (simulators/openai_stub): the real
client, retries, per-tenant caps and AICall accounting. The stub answers like a model by asking this
registry. The components that know the answers belong to the apps (the fallback planner to campaigns,
the deterministic lead analysis to contacts, the rule-based reply classifier to messaging), and the base
layer imports no app, so each app registers its answer here in its AppConfig.ready():

    offline_responders.register("plan", plan_answer, block="INPUT")

A prompt carries its data between markers in the user message (`<<<INPUT ... INPUT>>>`, as the prompt
files in prompts/ put it); a responder receives that block's text and returns the answer as a dict (what
the model's structured output would be). Prompts are named by their response_format schema name.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

OfflineResponder = Callable[[str], dict[str, Any]]


class NoOfflineAnswer(LookupError):
    """No responder is registered for the prompt, or the request does not carry the prompt's data block."""


@dataclass(frozen=True)
class _Registration:
    responder: OfflineResponder
    block: re.Pattern[str]


def prompt_name_of(request_json: Any) -> str:
    """The prompt a chat-completion request answers: its response_format's json_schema name ("" if none)."""
    fmt = ((request_json or {}).get("response_format") or {}).get("json_schema") or {}
    return str(fmt.get("name", ""))


def _user_text(request_json: Any) -> str:
    messages = (request_json or {}).get("messages") or []
    # The first user message holds the data (a repair round appends more after it).
    return next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")


class OfflineResponders:
    """Offline responders keyed by prompt name, each registered once by the app that owns the prompt."""

    def __init__(self) -> None:
        self._registered: dict[str, _Registration] = {}

    def register(self, prompt_name: str, responder: OfflineResponder, *, block: str) -> OfflineResponder:
        """Answer `prompt_name` with `responder(text between <<<block and block>>>)`."""
        existing = self._registered.get(prompt_name)
        if existing is not None and existing.responder is not responder:
            raise ImproperlyConfigured(f"offline responder for prompt {prompt_name!r} is registered twice")
        pattern = re.compile(rf"<<<{re.escape(block)}\n(.*?)\n{re.escape(block)}>>>", re.S)
        self._registered[prompt_name] = _Registration(responder, pattern)
        return responder

    def names(self) -> list[str]:
        return sorted(self._registered)

    def data_block(self, prompt_name: str, request_json: Any) -> str:
        """The prompt's data block in the request; NoOfflineAnswer when unknown or absent."""
        registration = self._registered.get(prompt_name)
        match = registration.block.search(_user_text(request_json)) if registration else None
        if match is None:
            raise NoOfflineAnswer(prompt_name)
        return match.group(1)

    def answer(self, prompt_name: str, request_json: Any) -> dict[str, Any]:
        """The offline answer to a chat-completion request for `prompt_name`; NoOfflineAnswer if there is none."""
        block = self.data_block(prompt_name, request_json)
        return self._registered[prompt_name].responder(block)


offline_responders = OfflineResponders()
