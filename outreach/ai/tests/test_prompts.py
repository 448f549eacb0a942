"""Prompts are version-controlled files beside the feature that sends them (outreach/ai/prompting.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from outreach.ai.prompting import PromptBook

REPO = Path(__file__).resolve().parents[3]
_CALL = re.compile(r"""PROMPTS\.(?:load|render)\(\s*["']([a-z_]+)["']""")
_BOOK = re.compile(r"^PROMPTS = PromptBook\.beside\(__file__\)$", re.M)


def _books() -> dict[Path, set[str]]:
    """Each module that keeps a PromptBook beside it, with the prompt names it asks for."""
    books: dict[Path, set[str]] = {}
    for path in REPO.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        code = path.read_text(encoding="utf-8")
        if _BOOK.search(code):
            books[path.parent / "prompts"] = set(_CALL.findall(code))
    return books


def test_every_prompt_named_in_code_exists_beside_its_feature_and_no_file_is_orphaned():
    books = _books()
    assert {folder.relative_to(REPO).as_posix() for folder in books} == {
        "campaigns/prompts", "contacts/prompts", "messaging/inbound/prompts"}
    for folder, names in books.items():
        assert names, folder
        assert names == {p.stem for p in folder.glob("*.md")}, folder
        for name in names:
            assert PromptBook(folder).load(name)


def test_rendering_is_strict_and_names_are_checked():
    book = PromptBook(REPO / "campaigns" / "prompts")
    with pytest.raises(KeyError):
        book.render("plan_user", timezone="UTC")  # missing variables are an error, not a hole in the prompt
    with pytest.raises(ValueError):
        book.load("../settings")
