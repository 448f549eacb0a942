"""Prompts are version-controlled files next to the feature that sends them, so a prompt change shows in
review beside the code that fills it: campaigns/prompts/ (plans), contacts/prompts/ (lead analysis),
messaging/inbound/prompts/ (reply classification).

A feature module holds one `PromptBook` for its folder (`PromptBook.beside(__file__)`). `render` uses
`string.Template` (`$name` / `${name}`) rather than `str.format`, because prompts contain JSON examples
whose braces must not be read as placeholders. Substitution is strict: a missing variable raises KeyError at
once instead of sending a prompt with a hole in it to the model.
"""
from __future__ import annotations

import functools
import string
from pathlib import Path


class PromptBook:
    """The prompts of one feature: `<folder>/<name>.md`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def beside(cls, module_file: str) -> PromptBook:
        """The `prompts/` folder next to a module (`PromptBook.beside(__file__)`)."""
        return cls(Path(module_file).resolve().parent / "prompts")

    @functools.cache  # noqa: B019 - a few books per process, each alive for the whole process
    def load(self, name: str) -> str:
        """The text of <folder>/<name>.md (cached per process; prompts change with deploys, not at runtime)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad prompt name {name!r}")
        path = self.folder / f"{name}.md"
        if not path.is_file():
            raise FileNotFoundError(f"no prompt named {name!r} (looked for {path})")
        return path.read_text(encoding="utf-8").strip()

    def render(self, name: str, **values: object) -> str:
        return string.Template(self.load(name)).substitute({k: str(v) for k, v in values.items()})
