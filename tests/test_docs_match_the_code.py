"""Docs that state facts the code also states: they must agree."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from outreach.queues import QUEUE_NAMES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _layout_block() -> str:
    section = README.split("## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _tracked_top_level_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line.split("/", 1)[0] for line in files.splitlines() if "/" in line and not line.startswith(".")}


def test_the_readme_layout_lists_exactly_the_top_level_folders() -> None:
    listed = set(re.findall(r"^(\w+)/\s", _layout_block(), flags=re.M))
    assert listed == _tracked_top_level_folders()


def test_the_readme_names_exactly_the_declared_queues() -> None:
    sentence = README.split("routed by that prefix to one of the queues of `outreach.queues.Queue`:", 1)[1]
    named = re.findall(r"`(\w+)`", sentence.split(".", 1)[0])
    assert named == list(QUEUE_NAMES)
