"""The layering issue 8 set up, kept by reading the source (ast), not by grepping it.

- click is imported only by `builder/cli.py` and `builder/commands/`: the
  only place anything is rendered for people;
- boto3 and botocore only under `builder/aws/`: one seam for AWS;
- the promotion planner reaches nothing of `builder.aws`, through any chain of
  imports: a plan is pure data computed from a read-only view;
- no library record renders itself (`def summary` lives in the command layer);
- no folder of the package is named like build output.

Every import counts, also the ones inside functions (commands import lazily)
and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "builder"
COMMAND_LAYER = ("builder.cli", "builder.commands")
AWS_SEAM = "builder.aws"
TOOL_OUTPUT_NAMES = {"build", "dist", "venv"}


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (`builder.registry` is its `__init__.py`)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


@cache
def imported_names(module: str) -> tuple[str, ...]:
    """Dotted names a module imports: `import a.b` -> a.b; `from a.b import c` -> a.b, and a.b.c when a module."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules())
    return tuple(names)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def builder_modules_loaded_by(name: str) -> Iterator[str]:
    """The package's modules that importing `name` executes: the module and its parent packages."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        candidate = ".".join(parts[:end])
        if candidate in modules():
            yield candidate


def is_within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def importers_of(top_level: str, *, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{modules()[module].relative_to(ROOT)} imports {name}"
        for module in modules()
        if not any(is_within(module, place) for place in allowed)
        for name in imported_names(module)
        if is_within(name, top_level)
    ]


def test_only_the_command_layer_imports_click():
    assert importers_of("click", allowed=()), "the walk finds no click import at all: it reads nothing"
    offenders = importers_of("click", allowed=COMMAND_LAYER)
    assert not offenders, "click belongs to builder/cli.py and builder/commands/ only:\n" + "\n".join(offenders)


@pytest.mark.parametrize("library", ["boto3", "botocore"])
def test_only_builder_aws_imports_the_aws_sdk(library):
    offenders = importers_of(library, allowed=(AWS_SEAM,))
    assert not offenders, f"{library} belongs to builder/aws/ only:\n" + "\n".join(offenders)


def planner_module() -> str:
    """Whichever module defines `plan_promotion` (a module today, maybe a package later)."""
    defining = [
        module for module, path in modules().items()
        if any(isinstance(node, ast.FunctionDef) and node.name == "plan_promotion"
               for node in ast.parse(path.read_text(encoding="utf-8")).body)
    ]
    assert len(defining) == 1, f"expected one module defining plan_promotion, found {defining}"
    return defining[0]


def import_chain(start: str, forbidden: str) -> list[str] | None:
    """The first chain of imports from `start` that reaches a module within `forbidden`, or None."""
    came_from: dict[str, str | None] = {}
    queue = [start]
    for loaded in builder_modules_loaded_by(start):
        came_from.setdefault(loaded, None)
        queue.append(loaded)
    while queue:
        module = queue.pop(0)
        if is_within(module, forbidden):
            chain = [module]
            while (parent := came_from[chain[-1]]) is not None:
                chain.append(parent)
            return chain[::-1]
        for name in imported_names(module):
            for loaded in builder_modules_loaded_by(name):
                if loaded not in came_from:
                    came_from[loaded] = module
                    queue.append(loaded)
    return None


def test_the_planner_reaches_nothing_of_builder_aws():
    planner = planner_module()
    chain = import_chain(planner, AWS_SEAM)
    assert chain is None, f"{planner} reaches {AWS_SEAM} through: " + " -> ".join(chain or ())


def test_import_chain_finds_an_indirect_import():
    """The walk itself: the registry's publish reaches builder.aws through its store (so the check can fail)."""
    chain = import_chain("builder.registry.publish", AWS_SEAM)
    assert chain is not None and chain[0] == "builder.registry.publish" and is_within(chain[-1], AWS_SEAM)


def test_no_library_record_renders_itself():
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} def summary"
        for module, path in modules().items()
        if not any(is_within(module, place) for place in COMMAND_LAYER)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "summary"
    ]
    assert not offenders, ("library results are data; render them in builder/commands/ "
                           "(e.g. builder/commands/render/<area>.py):\n" + "\n".join(offenders))


def test_no_package_folder_is_named_like_build_output():
    named = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*") if p.is_dir() and p.name in TOOL_OUTPUT_NAMES]
    assert not named, f"tools treat these as build output or environments: {named}"
