"""The seams between the apps, enforced (docs/internal-interfaces.md).

- `outreach/` is the base layer: it imports no app.
- An app uses another app only through that app's `interface` module, imported at module top: a
  function-level import across apps means the seam is in the wrong place. Private names (`_x`) are not
  part of an interface; neither is any other module of the app, whether reached by `from`, by attribute
  (`campaigns.models.X` after `import campaigns.interface`) or dynamically (`import_module`,
  `apps.get_model`, `import_string`).
- Domain modules follow one order, lowest first: contacts, campaigns, messaging, analytics. A lower app
  never imports a higher one, nor points a foreign key at its models; what it needs from above it declares
  as an extension point in its own interface, which the higher app fills when it starts (AppConfig.ready).
- Presentation modules (`api/`, `admin*.py`, management commands) compose several apps and nothing imports
  them, so they may use the interface of any app.
- The simulators, the demo and the benchmarks are not the product: the product never imports them, and
  production never installs the simulators.

The rules read the source with `ast` and import nothing, so they fail with the offending file and line.
Each rule is also run on a probe source that breaks it, so a rule that can no longer fail fails its test.
"""
from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = "outreach"
# Lowest first; an app's domain modules may use the apps before it.
APP_ORDER = ("contacts", "campaigns", "messaging", "analytics")
PRODUCT = (BASE, *APP_ORDER)
OUTSIDE = ("simulators", "demo", "benchmarks")  # not the product: they may use anything of it
TOP_LEVEL = (*PRODUCT, *OUTSIDE)
RANK = {app: n for n, app in enumerate(APP_ORDER)}
DYNAMIC_IMPORTERS = {"import_module", "__import__", "import_string", "get_model"}
MODEL_REFERENCES = {"ForeignKey", "OneToOneField", "ManyToManyField"}

# (module, what it reaches): why the rule does not apply. Keep this short.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("campaigns.models", "messaging.EmailSenderIdentity"):
        "a campaign sends from one sender identity: the foreign key is the contract (campaigns reads the "
        "identity's from_name, is_paused and status, the held-send rule's inputs, and nothing else)",
}


@dataclass(frozen=True)
class Use:
    """One place a module reaches another module: an import, an attribute chain, a dynamic import."""

    module: str  # the using module, dotted
    target: str  # the module reached, dotted (or "app.Model" for a model reference)
    line: int
    top: bool = True  # runs at import time (module body, or a top-level if/try)
    name: str = ""  # the name imported from `target` (`from target import name`), if any
    kind: str = "import"  # import | attribute | dynamic | model

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}"

    @property
    def app(self) -> str:
        return self.module.split(".", 1)[0]

    @property
    def target_app(self) -> str:
        return self.target.split(".", 1)[0]


# --- reading the source ------------------------------------------------------------------------------------

def _top_level_nodes(tree: ast.Module) -> set[int]:
    """ids of import nodes that run when the module is imported (module body, top-level if/try)."""
    top: set[int] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            top.add(id(node))
        elif isinstance(node, ast.If | ast.Try):
            pending.extend([*node.body, *node.orelse, *getattr(node, "finalbody", [])])
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


def _is_submodule(dotted: str) -> bool:
    path = ROOT / Path(*dotted.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _import_uses(module: str, tree: ast.Module, is_package: bool) -> Iterator[Use]:
    top = _top_level_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Use(module, alias.name, node.lineno, id(node) in top)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if _is_submodule(candidate):  # `from campaigns import interface` imports a submodule
                    yield Use(module, candidate, node.lineno, id(node) in top)
                else:
                    yield Use(module, target, node.lineno, id(node) in top, name=alias.name)


def _attribute_uses(module: str, tree: ast.Module) -> Iterator[Use]:
    """`campaigns.models.X` after `import campaigns.interface`: the package name reaches past the interface."""
    bound = {alias.name.split(".", 1)[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names if alias.asname is None}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in bound and node.value.id in TOP_LEVEL):
            yield Use(module, f"{node.value.id}.{node.attr}", node.lineno, kind="attribute")


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _constant_args(node: ast.Call) -> list[str]:
    return [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _dynamic_uses(module: str, tree: ast.Module) -> Iterator[Use]:
    """import_module("x.y"), __import__("x"), import_string("x.y.Z"), apps.get_model("x", "Model")."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in DYNAMIC_IMPORTERS:
            args = _constant_args(node)
            if args:
                target = ".".join(args[:2]) if _call_name(node) == "get_model" else args[0]
                yield Use(module, target, node.lineno, kind="dynamic")


def _model_uses(module: str, tree: ast.Module) -> Iterator[Use]:
    """ForeignKey("messaging.EmailSenderIdentity", ...): a model-level dependency on another app."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in MODEL_REFERENCES:
            for label in _constant_args(node)[:1]:
                app_label = label.split(".", 1)[0]
                if "." in label and app_label in RANK:
                    yield Use(module, label, node.lineno, kind="model")


def uses_in_source(module: str, source: str, *, is_package: bool = False) -> list[Use]:
    tree = ast.parse(source)
    return [*_import_uses(module, tree, is_package), *_attribute_uses(module, tree),
            *_dynamic_uses(module, tree), *_model_uses(module, tree)]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_app_code(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "tests" not in parts and "migrations" not in parts and not parts[-1].startswith("conftest")


@functools.cache
def _uses_of(packages: tuple[str, ...]) -> list[Use]:
    """Read once per run: every rule and the exception check share it (callers do not mutate it)."""
    found: list[Use] = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if _is_app_code(path):
                found.extend(uses_in_source(_module_name(path), path.read_text(),
                                            is_package=path.name == "__init__.py"))
    return found


# --- the rules: each returns its violations as readable lines ----------------------------------------------

def _cross_app(uses: list[Use]) -> list[Use]:
    return [u for u in uses if u.target_app in TOP_LEVEL and u.target_app != u.app
            and (u.module, u.target) not in EXCEPTIONS]


def _is_presentation(module: str) -> bool:
    parts = module.split(".")
    return "api" in parts[1:] or any(p.startswith("admin") for p in parts[1:]) or "commands" in parts


def base_imports_no_app(uses: list[Use]) -> list[str]:
    return [f"{u.where} reaches {u.target}" for u in _cross_app(uses)
            if u.app == BASE and u.target_app in (*APP_ORDER, *OUTSIDE)]


def no_import_across_apps_inside_a_function(uses: list[Use]) -> list[str]:
    return [f"{u.where} imports {u.target} inside a function" for u in _cross_app(uses)
            if u.app in PRODUCT and u.kind == "import" and not u.top]


def apps_use_each_other_only_through_their_interface(uses: list[Use]) -> list[str]:
    problems = []
    for u in _cross_app(uses):
        if u.app not in APP_ORDER or u.target_app not in APP_ORDER or u.kind == "model":
            continue
        interface = f"{u.target_app}.interface"
        if u.target != interface and not (u.kind == "attribute" and u.target == interface):
            problems.append(f"{u.where} reaches {u.target} ({u.kind}); use {interface}")
        elif u.name.startswith("_"):
            problems.append(f"{u.where} imports the private {u.name} from {interface}")
    return problems


def domain_modules_use_only_lower_apps(uses: list[Use]) -> list[str]:
    return [f"{u.where} ({u.app}) reaches {u.target}, which is above it" for u in _cross_app(uses)
            if u.app in RANK and u.target_app in RANK and not _is_presentation(u.module)
            and RANK[u.target_app] > RANK[u.app]]


def the_product_never_uses_the_simulators_demo_or_benchmarks(uses: list[Use]) -> list[str]:
    return [f"{u.where} reaches {u.target}" for u in _cross_app(uses)
            if u.app in PRODUCT and u.target_app in OUTSIDE]


RULES: list[Callable[[list[Use]], list[str]]] = [
    base_imports_no_app,
    no_import_across_apps_inside_a_function,
    apps_use_each_other_only_through_their_interface,
    domain_modules_use_only_lower_apps,
    the_product_never_uses_the_simulators_demo_or_benchmarks,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_tree_keeps_the_rule(rule: Callable[[list[Use]], list[str]]) -> None:
    assert rule(_uses_of(TOP_LEVEL)) == []


# Each probe breaks exactly the rule it is listed with: (rule, module, source).
PROBES = [
    (base_imports_no_app, "outreach.probe", "from campaigns.interface import EngineEvent\n"),
    (base_imports_no_app, "outreach.probe", "import importlib\nimportlib.import_module('messaging.models')\n"),
    (no_import_across_apps_inside_a_function, "messaging.probe",
     "def f():\n    from campaigns.interface import EngineEvent\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe", "from campaigns.models import Campaign\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe", "import campaigns.models as m\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe", "from campaigns import models\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe",
     "from campaigns.interface import _private_helper\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe",
     "import campaigns.interface\nx = campaigns.models.Campaign\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe",
     "from django.apps import apps\nM = apps.get_model('campaigns', 'Campaign')\n"),
    (apps_use_each_other_only_through_their_interface, "messaging.probe",
     "from django.utils.module_loading import import_string\nf = import_string('campaigns.services.x')\n"),
    (domain_modules_use_only_lower_apps, "contacts.probe", "from campaigns.interface import EngineEvent\n"),
    (domain_modules_use_only_lower_apps, "contacts.models",
     "from django.db import models\nx = models.ForeignKey('messaging.OutboundMessage', on_delete=None)\n"),
    (the_product_never_uses_the_simulators_demo_or_benchmarks, "messaging.probe",
     "from simulators.sendgrid.signing import generate_key_pair\n"),
]


@pytest.mark.parametrize("rule, module, source", PROBES,
                         ids=[f"{rule.__name__}:{n}" for n, (rule, _, _) in enumerate(PROBES)])
def test_each_rule_fails_on_a_probe_that_breaks_it(rule, module: str, source: str) -> None:
    assert rule(uses_in_source(module, source)) != []


@pytest.mark.parametrize("source", [
    "from campaigns.interface import EngineEvent\n",
    "import campaigns.interface\nx = campaigns.interface.EngineEvent\n",
    "from campaigns import interface\n",
])
def test_the_rules_accept_a_module_top_use_of_a_lower_interface(source: str) -> None:
    uses = uses_in_source("messaging.probe", source)
    assert [line for rule in RULES for line in rule(uses)] == []


@pytest.mark.parametrize("rule", sorted(EXCEPTIONS))
def test_every_listed_exception_is_still_needed(rule: tuple[str, str]) -> None:
    module, target = rule
    assert any(u.module == module and u.target == target for u in _uses_of(TOP_LEVEL)), f"{rule}: drop it"
