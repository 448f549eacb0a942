"""Prompts loaded from version-controlled files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from outreach.ai.prompting import PROMPTS_DIR, load_prompt, render_prompt

REPO = Path(__file__).resolve().parents[3]


def test_every_prompt_named_in_code_exists_and_renders_strictly():
    code = "\n".join(p.read_text(encoding="utf-8") for p in REPO.glob("*/**/*.py")
                     if ".venv" not in p.parts and "tests" not in p.parts)
    names = set(re.findall(r"""(?:load_prompt|render_prompt)\(\s*["']([a-z_]+)["']""", code))
    assert {"plan_system", "plan_user", "plan_repair", "lead_analysis_system", "lead_analysis_user",
            "reply_classification_system", "reply_classification_user"} <= names
    for name in names:
        assert (PROMPTS_DIR / f"{name}.md").is_file(), name
        assert load_prompt(name)
    with pytest.raises(KeyError):
        render_prompt("plan_user", timezone="UTC")  # missing variables are an error, not a hole in the prompt
    with pytest.raises(ValueError):
        load_prompt("../settings")
