"""Prompts live in outreach/ai/prompts/*.md under version control, so a prompt change shows in review.

`render_prompt` uses `string.Template` (`$name` / `${name}`) rather than `str.format`, because prompts
contain JSON examples whose braces must not be read as placeholders. Substitution is strict: a missing
variable raises KeyError at once instead of sending a prompt with a hole in it to the model.
"""
from __future__ import annotations

import functools
import string
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@functools.cache
def load_prompt(name: str) -> str:
    """The text of prompts/<name>.md (cached per process; prompts change with deploys, not at runtime)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad prompt name {name!r}")
    path = PROMPTS_DIR / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} (looked for {path})")
    return path.read_text(encoding="utf-8").strip()


def render_prompt(name: str, **values: object) -> str:
    return string.Template(load_prompt(name)).substitute({k: str(v) for k, v in values.items()})
