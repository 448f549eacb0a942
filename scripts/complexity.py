"""`make lint`'s complexity gate: radon's cyclomatic grade of every function in the product.

Prints each function graded D or worse (radon's "more than 20 paths") and exits 1 if there is one. The
simulators (which mimic a provider's whole API in one dispatcher) and the plan DSL's semantic checks (one
rule per branch, kept side by side on purpose) are exempt; the list below says so by name.
"""
from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_rank, cc_visit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("outreach", "contacts", "campaigns", "messaging", "analytics", "demo", "benchmarks", "scripts", "tests")
# (file, function): why it may stay complex.
EXEMPT = {
    ("campaigns/dsl/problems.py", "_semantic_problems"): "the DSL's semantic checks: one rule per branch",
    ("campaigns/dsl/problems.py", "_problem_from_pydantic"): "the DSL's checks: one message per pydantic error type",
}


def _functions(blocks: list) -> list:
    """Functions and methods: a class's own grade is an aggregate of its methods, so look inside it."""
    found = []
    for block in blocks:
        found.extend(block.methods if hasattr(block, "methods") else [block])
    return found


def main() -> int:
    bad: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            for block in _functions(cc_visit(path.read_text())):
                if cc_rank(block.complexity) >= "D" and (relative, block.name) not in EXEMPT:
                    bad.append(f"{relative}:{block.lineno} {block.name} {cc_rank(block.complexity)} "
                               f"({block.complexity})")
    for line in bad:
        print(line)
    print(f"complexity: {len(bad)} function(s) graded D or worse" if bad else "complexity: nothing graded D or worse")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
