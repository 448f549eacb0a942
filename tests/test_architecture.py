"""The seams between the apps, enforced (docs/internal-interfaces.md).

- `outreach/` is the base layer: it imports no app.
- An app imports another app only through that app's `interface` module, at module top: a function-level
  import across apps means the seam is in the wrong place.
- Domain modules follow one order, lowest first: contacts, campaigns, messaging, analytics. A lower app
  never imports a higher one; what it needs from above it declares as an extension point in its own
  interface, which the higher app fills when it starts (its AppConfig.ready).
- Presentation modules (`api/`, `admin*.py`, management commands) compose several apps and nothing
  imports them, so they may use the interface of any app.
- The simulators are not part of the product: no app imports them, and production never installs them.

These tests read the source with `ast`; they import nothing, so they fail with the offending file and line.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = "outreach"
# Lowest first; an app's domain modules may import the interfaces of the apps before it.
APP_ORDER = ("contacts", "campaigns", "messaging", "analytics")
PRODUCT = (BASE, *APP_ORDER)
OUTSIDE = ("simulators", "demo", "benchmarks")  # not the product: they may import anything of it
TOP_LEVEL = (*PRODUCT, *OUTSIDE)

# (importing module, imported module): why the rule does not apply. Keep this short.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted (for `from x import y`, `x.y` when y is a submodule)
    line: int
    top: bool  # at module top (possibly under `if TYPE_CHECKING:` or `try:`)

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_app_code(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "tests" not in parts and "migrations" not in parts and not parts[-1].startswith("conftest")


def _top_level_nodes(tree: ast.Module) -> set[int]:
    """ids of import nodes that run when the module is imported (module body, top-level if/try)."""
    top: set[int] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            top.add(id(node))
        elif isinstance(node, ast.If | ast.Try):
            pending.extend(node.body)
            pending.extend(node.orelse)
            pending.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return top


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports_of(path: Path) -> list[Import]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    top = _top_level_nodes(tree)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, node.lineno, id(node) in top))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            for alias in node.names:
                # `from campaigns import interface` imports the submodule campaigns.interface
                candidate = f"{target}.{alias.name}"
                sub = ROOT / Path(*candidate.split("."))
                name = candidate if (sub.with_suffix(".py").exists() or sub.is_dir()) else target
                found.append(Import(module, name, node.lineno, id(node) in top))
    return found


def _all_imports(packages: tuple[str, ...]) -> list[Import]:
    imports: list[Import] = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if _is_app_code(path):
                imports.extend(_imports_of(path))
    return imports


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _is_presentation(module: str) -> bool:
    parts = module.split(".")
    return ("api" in parts[1:] or any(p.startswith("admin") for p in parts[1:])
            or "commands" in parts)


def _cross_app(imports: list[Import]) -> list[Import]:
    return [i for i in imports if _top(i.target) in TOP_LEVEL and _top(i.target) != _top(i.module)
            and (i.module, i.target) not in EXCEPTIONS]


def test_the_base_layer_imports_no_app() -> None:
    offending = [f"{i.where} imports {i.target}" for i in _all_imports((BASE,))
                 if _top(i.target) in (*APP_ORDER, *OUTSIDE) and (i.module, i.target) not in EXCEPTIONS]
    assert offending == []


def test_no_import_across_apps_inside_a_function() -> None:
    offending = [f"{i.where} imports {i.target} inside a function" for i in _cross_app(_all_imports(PRODUCT))
                 if not i.top]
    assert offending == []


def test_apps_import_each_other_only_through_their_interface() -> None:
    offending = [
        f"{i.where} imports {i.target}; use {_top(i.target)}.interface"
        for i in _cross_app(_all_imports(APP_ORDER))
        if _top(i.target) in APP_ORDER and i.target != f"{_top(i.target)}.interface"
    ]
    assert offending == []


def test_domain_modules_import_only_lower_apps() -> None:
    rank = {app: n for n, app in enumerate(APP_ORDER)}
    offending = [
        f"{i.where} ({_top(i.module)}) imports {i.target}, which is above it"
        for i in _cross_app(_all_imports(APP_ORDER))
        if _top(i.target) in rank and not _is_presentation(i.module) and rank[_top(i.target)] > rank[_top(i.module)]
    ]
    assert offending == []


def test_the_product_never_imports_the_simulators_demo_or_benchmarks() -> None:
    offending = [f"{i.where} imports {i.target}" for i in _cross_app(_all_imports(PRODUCT))
                 if _top(i.target) in OUTSIDE]
    assert offending == []


@pytest.mark.parametrize("rule", sorted(EXCEPTIONS))
def test_every_listed_exception_is_still_needed(rule: tuple[str, str]) -> None:
    module, target = rule
    imports = _all_imports(TOP_LEVEL)
    assert any(i.module == module and i.target == target for i in imports), f"{rule} no longer happens: drop it"


def test_the_rules_see_a_function_level_cross_app_import() -> None:
    """The checker itself: a function-level import is found, a module-top one is not."""
    source = "from campaigns import dsl\n\ndef f():\n    from messaging.models import X\n"
    path = ROOT / "contacts" / "_architecture_probe.py"
    path.write_text(source)
    try:
        found = _imports_of(path)
    finally:
        path.unlink()
    assert [(i.target, i.top) for i in found] == [("campaigns.dsl", True), ("messaging.models", False)]
