"""Lambda's init, resolved without running it: for a bundle this machine cannot import.

When the handler cannot be imported here (an arm64 bundle on an x86_64 host,
or no interpreter of the runtime's Python), relay resolves what the import
would need, against what Lambda would have: the bundle (`/var/task`), its
layers (`/opt/python...`), the target Python's standard library
(`stdlib.py`) and the provided AWS SDK (`provided.py`):

- the function's own code: every module reachable from the handler's module
  through imports of modules that are the bundle's own (not an installed
  distribution's) is parsed with `ast`; each module-level import (in `if`,
  `try`, `with` and class bodies too) must be found, except one guarded by a
  `try` that catches `ImportError` (its handler's imports then count) or
  under `if TYPE_CHECKING:`; `sys.version_info`/`sys.platform` tests are
  decided for the target. Imports inside functions run later, not at init:
  not followed;
- installed distributions: each `Requires-Dist` that holds on the target must
  be installed in the bundle or a layer, or provided (`distributions.py`);
- native files: an extension module must carry a suffix the target's CPython
  loads, and a tagged extension's (or vendored library's) ELF header must name
  the target's machine (`extensions.py`).

Nothing is executed, so a module that fails while it runs, or one imported
by name at run time (`importlib.import_module(name)`), is not caught here.
"""

from __future__ import annotations

import ast
import collections
import enum
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import attrs

from builder.frozen import to_tuple
from builder.runtime.distributions import InstalledDistribution, installed_distributions, missing_requirements
from builder.runtime.extensions import extension_suffixes, unloadable_natives
from builder.runtime.initcode import (
    binds,
    catches_import_error,
    changes_sys_path,
    decide,
    is_type_checking,
    suppresses_import_error,
)
from builder.runtime.mount import Mount
from builder.runtime.provided import PROVIDED_DISTRIBUTIONS
from builder.runtime.stdlib import parse_version, stdlib_modules

# Where an imported name was found.
BUNDLE, LAYERS, STDLIB, SDK = "bundle", "layers", "stdlib", "sdk"


class Problem(enum.StrEnum):
    MISSING = "missing"  # no module of that name anywhere Lambda looks
    FOREIGN = "foreign"  # only native files built for another Python or machine
    REQUIREMENT = "requirement"  # an installed distribution's Requires-Dist is not installed
    NO_HANDLER = "no-handler"  # the handler's module binds no such name
    RELATIVE = "relative"  # a relative import above the top-level package
    SYNTAX = "syntax"  # the module does not parse


@attrs.frozen
class Finding:
    """One reason the function would not start: what is absent, and where it was asked for."""

    problem: Problem
    name: str  # the module, or the distribution
    where: str  # "app/handlers/orders.py:3", or "requests 2.32.3 (bundle)"
    detail: str = ""


@attrs.frozen
class StaticResult:
    findings: tuple[Finding, ...] = attrs.field(converter=to_tuple)
    modules: int  # the function's own modules parsed
    imports: dict[str, int]  # distinct top-level names found, by where: bundle, layers, stdlib, sdk
    distributions: int
    requirements: int  # Requires-Dist lines that hold on the target
    extensions: int  # native files checked
    unparsed: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # newer syntax than this Python reads
    # imports made after the module changed sys.path, not found where the check looks: "x (where)"
    unresolved: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {
            "modules": self.modules, "imports": dict(self.imports), "distributions": self.distributions,
            "requirements": self.requirements, "extensions": self.extensions, "unparsed": list(self.unparsed),
            "unresolved": list(self.unresolved),
            "findings": [attrs.asdict(f) for f in self.findings],
        }


@attrs.frozen
class _Module:
    """A module of the function's own code, as the import system would find it."""

    name: str
    file: Path | None  # None for a namespace package or a native module
    dirs: tuple[Path, ...] = ()  # a package's folders (several for a namespace package)
    shown: str = ""  # its path as Lambda shows it

    @property
    def is_package(self) -> bool:
        return bool(self.dirs)


@attrs.frozen
class _Located:
    kind: str  # "package", "module", "native", "namespace"
    file: Path | None
    folder: Path | None = None


def check_statically(mount: Mount, handler: str, *, python: str, machine: str) -> StaticResult:
    """Resolve `handler`'s init against the mounted bundle and layers for CPython `python` on `machine`."""
    folders = _folders(mount, python)
    resolver, dists = _resolved(folders, {str(mount.task): "/var/task", str(mount.opt): "/opt"}, handler,
                                python=python, machine=machine)
    missing, held = missing_requirements(dists, PROVIDED_DISTRIBUTIONS, python=python, machine=machine)
    findings = list(resolver.findings)
    for item in missing:
        dist = item.required_by
        findings.append(Finding(Problem.REQUIREMENT, item.name, f"{dist.name} {dist.version} ({dist.where})",
                                item.requirement))
    natives, unloadable = unloadable_natives(folders, python=python, machine=machine)
    reported = {f.name for f in findings if f.problem is Problem.FOREIGN}
    findings.extend(Finding(Problem.FOREIGN, u.name, u.where, u.why) for u in unloadable if u.name not in reported)
    return StaticResult(findings=findings, modules=len(resolver.parsed), imports=dict(resolver.origins),
                        distributions=len(dists), requirements=held, extensions=natives, unparsed=resolver.unparsed,
                        unresolved=resolver.unresolved)


# In `init_imports`' list, "pkg.mod:name" stands for `from pkg.mod import name` (what bootstrap's `serve` runs).
FROM_IMPORT = ":"


def init_imports(task: Path, handler: str, *, python: str, machine: str) -> list[str]:
    """What the handler's own code (in the bundle unpacked at `task`) imports at init from elsewhere
    than the bundle, in the order imported: from its layers, the standard library, the runtime's
    packages, or nowhere. Known before the layers are built.

    Each module by its dotted name, and each name taken from one as "module:name" (`FROM_IMPORT`): a
    package may import its submodules only when a name is asked of it (pydantic's `BaseModel` is most
    of pydantic), and `from pydantic import BaseModel` asks at init.

    What a warm interpreter imports ahead of the checks of a layer set when no check has said yet what
    they load (`check.WarmInterpreters`): it decides what is imported first, never a verdict.
    """
    resolver, _ = _resolved([(task, BUNDLE)], {str(task): "/var/task"}, handler, python=python, machine=machine)
    return [name for name in resolver.imported if resolver.found_in.get(top_name(name)) != BUNDLE]


def top_name(imported: str) -> str:
    """The top-level name of an entry of `init_imports` ("pkg" for "pkg.mod" and "pkg.mod:name")."""
    return imported.partition(FROM_IMPORT)[0].partition(".")[0]


def _resolved(folders: list[tuple[Path, str]], shown: dict[str, str], handler: str, *, python: str,
              machine: str) -> tuple[_Resolver, tuple[InstalledDistribution, ...]]:
    """`handler`'s init walked through `folders` (`shown` as Lambda names them), and their distributions."""
    dists = installed_distributions(folders)
    resolver = _Resolver(folders, shown, python=python, machine=machine,
                         distribution_names={n for d in dists for n in d.top_level})
    resolver.handler(handler)
    return resolver, dists


def _folders(mount: Mount, python: str) -> list[tuple[Path, str]]:
    """Where Lambda looks before the standard library, in order, and which part of the function each is."""
    site = mount.opt / "python" / "lib" / f"python{python}" / "site-packages"
    return [(mount.task, BUNDLE), (site, LAYERS), (mount.opt / "python", LAYERS)]


class _Resolver:
    """Walks the function's own modules from the handler's, recording what each import finds."""

    def __init__(self, folders: list[tuple[Path, str]], shown: dict[str, str], *, python: str, machine: str,
                 distribution_names: set[str]) -> None:
        from builder.runtime.provided import provided_modules

        self.folders = folders
        self.shown = shown  # local folder -> its path on Lambda
        self.python, self.version = python, parse_version(python)
        self.machine = machine
        self.suffixes = extension_suffixes(python, machine)
        self.stdlib = stdlib_modules(python)
        self.provided = set(provided_modules())
        self.distribution_names = distribution_names
        self.findings: list[Finding] = []
        self.parsed: dict[str, _Module] = {}
        self.unparsed: list[str] = []
        self.unresolved: list[str] = []
        self.origins: collections.Counter[str] = collections.Counter()
        self.found_in: dict[str, str] = {}  # top-level name -> where it was found (BUNDLE, LAYERS, STDLIB, SDK)
        self.imported: dict[str, None] = {}  # modules imported (found or not), and "module:name", in order
        self._top_seen: dict[str, str | None] = {}
        self._listings: dict[Path, frozenset[str]] = {}
        self._foreign: dict[str, list[str]] = {}
        self._trees: dict[str, ast.Module | None] = {}

    # -- the handler --------------------------------------------------------------------------

    def handler(self, handler: str) -> None:
        modname, _, fname = handler.rpartition(".")
        modname = modname.replace("/", ".")
        if not modname or not fname:
            self.findings.append(Finding(Problem.MISSING, handler, "handler", "not a module.function handler"))
            return
        if not self.require(modname, "the handler", tolerant=False):
            return
        module = self.own(modname)
        if module is None or module.file is None or module.file.suffix != ".py":
            return
        tree = self._tree(module)
        if tree is not None and not binds(tree.body, fname):
            self.findings.append(Finding(Problem.NO_HANDLER, fname, module.shown, f"{modname} has no function {fname}"))

    # -- imports ------------------------------------------------------------------------------

    def require(self, dotted: str, where: str, *, tolerant: bool) -> bool:
        """Import `dotted` (absolute): whether it is found. Its top-level name must be; the own code's
        packages and modules on the way are found and followed. An absence is recorded unless `tolerant`.
        """
        parts = dotted.split(".")
        origin = self._top(parts[0])
        self.imported.setdefault(dotted)
        if origin is None:
            if not tolerant:
                self._absent(parts[0], where)
            return False
        if origin != "own":
            return True  # a distribution's, the standard library's or the SDK's: its own imports are theirs
        module = self._own_top(parts[0])
        if module is None:
            return False
        chain = [module]
        for i in range(1, len(parts)):
            child = self.submodule(chain[-1], parts[i])
            if child is None:
                if not tolerant:
                    self._absent(".".join(parts[: i + 1]), where)
                    for found in chain:
                        self.follow(found)
                return False
            chain.append(child)
        for found in chain:  # each package's __init__ runs on the way down
            self.follow(found)
        return True

    def own(self, dotted: str) -> _Module | None:
        """The function's own module `dotted`, when it is one and is there; nothing is recorded."""
        parts = dotted.split(".")
        if self._top(parts[0]) != "own":
            return None
        module = self._own_top(parts[0])
        for part in parts[1:]:
            if module is None:
                return None
            module = self.submodule(module, part)
        return module

    def _absent(self, name: str, where: str) -> None:
        top = name.partition(".")[0]
        if top in self._foreign and top == name:
            found = ", ".join(sorted(self._foreign[top]))
            detail = f"only {found}; CPython {self.python} on {self.machine} loads {' or '.join(self.suffixes)}"
            self.findings.append(Finding(Problem.FOREIGN, name, where, detail))
        else:
            self.findings.append(Finding(Problem.MISSING, name, where))

    def _top(self, name: str) -> str | None:
        """Where a top-level name is found: "own", "dist" (installed or provided), "stdlib"; None if absent."""
        if name in self._top_seen:
            return self._top_seen[name]
        origin = self._find_top(name)
        self._top_seen[name] = origin
        return origin

    def _find_top(self, name: str) -> str | None:
        if name in sys.builtin_module_names and name in self.stdlib:
            self._count(name, STDLIB)
            return "stdlib"
        namespace = False
        for folder, where in self.folders:
            located = self._locate(folder, name)
            if located is None:
                continue
            if located.kind == "namespace":
                namespace = True
                continue
            self._count(name, where)
            return "dist" if name in self.distribution_names else "own"
        if name in self.stdlib:
            self._count(name, STDLIB)
            return "stdlib"
        if name in self.provided:
            self._count(name, SDK)
            return "dist"
        if namespace:
            self._count(name, BUNDLE)
            return "dist" if name in self.distribution_names else "own"
        return None

    def _count(self, name: str, where: str) -> None:
        self.origins[where] += 1
        self.found_in[name] = where

    def _own_top(self, name: str) -> _Module | None:
        portions: list[Path] = []
        for folder, _ in self.folders:
            located = self._locate(folder, name)
            if located is None:
                continue
            if located.kind == "namespace":
                assert located.folder is not None
                portions.append(located.folder)
                continue
            return self._module(name, located)
        return _Module(name, None, tuple(portions), self._show(portions[0])) if portions else None

    def submodule(self, parent: _Module, name: str) -> _Module | None:
        if not parent.is_package:
            return None
        portions: list[Path] = []
        for folder in parent.dirs:
            located = self._locate(folder, name)
            if located is None:
                continue
            if located.kind == "namespace":
                assert located.folder is not None
                portions.append(located.folder)
                continue
            return self._module(f"{parent.name}.{name}", located)
        if portions:
            return _Module(f"{parent.name}.{name}", None, tuple(portions), self._show(portions[0]))
        return None

    def _module(self, name: str, located: _Located) -> _Module:
        dirs = (located.folder,) if located.kind == "package" and located.folder is not None else ()
        shown = self._show(located.file) if located.file is not None else ""
        return _Module(name, located.file, dirs, shown)

    def _locate(self, folder: Path, name: str) -> _Located | None:
        """What `name` is in `folder`, in the order CPython's FileFinder looks (package, native, source, bytecode)."""
        entries = self._listing(folder)
        package = folder / name
        namespace = False
        if name in entries and package.is_dir():
            inside = self._listing(package)
            if "__init__.py" in inside:
                return _Located("package", package / "__init__.py", package)
            if "__init__.pyc" in inside:
                return _Located("package", package / "__init__.pyc", package)
            namespace = True
        for suffix in self.suffixes:
            if name + suffix in entries:
                return _Located("native", folder / (name + suffix))
        if name + ".py" in entries:
            return _Located("module", folder / (name + ".py"))
        if name + ".pyc" in entries:
            return _Located("module", folder / (name + ".pyc"))
        foreign = [e for e in entries if e.startswith(name + ".") and e.endswith(".so")]
        if foreign:
            self._foreign.setdefault(name, []).extend(foreign)
        return _Located("namespace", None, package) if namespace else None

    def _listing(self, folder: Path) -> frozenset[str]:
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[folder] = frozenset()
        return self._listings[folder]

    def _show(self, path: Path) -> str:
        text = str(path)
        for local, shown in self.shown.items():
            if text.startswith(local + os.sep):
                return shown + text[len(local):]
        return text

    # -- the function's own code --------------------------------------------------------------

    def follow(self, module: _Module) -> None:
        """Parse an own module once and resolve its module-level imports."""
        if module.name in self.parsed:
            return
        self.parsed[module.name] = module
        tree = self._tree(module)
        if tree is not None:
            _Imports(self, module).visit(tree.body, tolerant=False)

    def _tree(self, module: _Module) -> ast.Module | None:
        if module.name not in self._trees:
            self._trees[module.name] = self._parse(module)
        return self._trees[module.name]

    def _parse(self, module: _Module) -> ast.Module | None:
        if module.file is None or module.file.suffix != ".py":
            return None
        try:
            return _parse(module.file)
        except SyntaxError as exc:
            if self.version > sys.version_info[:2]:
                # Newer syntax than this Python reads: the module's imports are not followed, and it says so.
                self.unparsed.append(module.shown)
            else:
                self.findings.append(Finding(Problem.SYNTAX, module.name, f"{module.shown}:{exc.lineno}", str(exc.msg)))
            return None
        except (OSError, ValueError) as exc:
            self.findings.append(Finding(Problem.SYNTAX, module.name, module.shown, str(exc)))
            return None


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


class _Imports:
    """The module-level statements of one own module: which imports run at init, and which may fail."""

    def __init__(self, resolver: _Resolver, module: _Module) -> None:
        self.resolver, self.module = resolver, module
        self.undecided = 0  # how many `if`s the check cannot decide enclose the statement
        self.path_changed = False  # the module changed sys.path: later imports may come from anywhere

    def visit(self, body: Iterable[ast.stmt], *, tolerant: bool) -> bool:
        """Resolve the imports `body` runs; False when one of them is absent."""
        ok = True
        for node in body:
            ok = self._statement(node, tolerant=tolerant) and ok
        return ok

    def _statement(self, node: ast.stmt, *, tolerant: bool) -> bool:
        if isinstance(node, ast.Import):
            return _every(self._import(alias.name, node, tolerant) for alias in node.names)
        if isinstance(node, ast.ImportFrom):
            return self._import_from(node, tolerant)
        if isinstance(node, ast.If):
            taken = decide(node.test, self.resolver.version)
            if is_type_checking(node.test):
                taken = False
            ok = True
            self.undecided += taken is None
            if taken is not False:
                ok = self.visit(node.body, tolerant=tolerant) and ok
            if taken is not True:
                ok = self.visit(node.orelse, tolerant=tolerant) and ok
            self.undecided -= taken is None
            return ok
        if isinstance(node, ast.Try | ast.TryStar):
            guarded = any(catches_import_error(h) for h in node.handlers)
            ok = self.visit(node.body, tolerant=tolerant or guarded)
            if guarded and not ok:
                # The body's import failed and was caught: the handler's imports run instead.
                ok = _every(self.visit(h.body, tolerant=tolerant) for h in node.handlers if catches_import_error(h))
            else:
                ok = self.visit(node.orelse, tolerant=tolerant) and ok
            return self.visit(node.finalbody, tolerant=tolerant) and ok
        if isinstance(node, ast.With):
            suppressed = any(suppresses_import_error(item.context_expr) for item in node.items)
            return self.visit(node.body, tolerant=tolerant or suppressed) or suppressed
        if isinstance(node, ast.For | ast.While):
            return self.visit(node.body, tolerant=tolerant) and self.visit(node.orelse, tolerant=tolerant)
        if isinstance(node, ast.ClassDef):
            return self.visit(node.body, tolerant=tolerant)  # a class body runs at import
        if isinstance(node, ast.Match):
            return _every(self.visit(case.body, tolerant=tolerant) for case in node.cases)
        self.path_changed = self.path_changed or changes_sys_path(node)
        return True

    def _where(self, node: ast.stmt) -> str:
        return f"{self.module.shown}:{node.lineno}"

    def _import(self, name: str, node: ast.stmt, tolerant: bool) -> bool:
        where = self._where(node)
        if self.path_changed and not tolerant:
            if not self.resolver.require(name, where, tolerant=True):
                self.resolver.unresolved.append(f"{name} ({where}, after sys.path was changed)")
            return True
        if self.undecided:
            where += ", under an `if` the check cannot decide: guard an optional import with try/except ImportError"
        return self.resolver.require(name, where, tolerant=tolerant)

    def _import_from(self, node: ast.ImportFrom, tolerant: bool) -> bool:
        if node.module == "__future__":
            return True
        base = self._absolute(node)
        if base is None:
            if not tolerant:
                self.resolver.findings.append(Finding(
                    Problem.RELATIVE, "." * node.level + (node.module or ""), self._where(node),
                    "attempted relative import beyond the top-level package",
                ))
            return False
        found = self._import(base, node, tolerant)
        parent = self.resolver.own(base) if found else None
        if parent is None:  # not the function's own module: what init asks of it (`init_imports`)
            for alias in node.names:
                if alias.name != "*":
                    self.resolver.imported.setdefault(f"{base}{FROM_IMPORT}{alias.name}")
        if not found:
            return False
        if parent is not None:
            for alias in node.names:
                # `from pkg import name`: a submodule when there is one (it is imported), else an attribute.
                child = self.resolver.submodule(parent, alias.name) if alias.name != "*" else None
                if child is not None:
                    self.resolver.follow(child)
        return True

    def _absolute(self, node: ast.ImportFrom) -> str | None:
        if node.level == 0:
            return node.module or ""
        package = self.module.name if self.module.is_package else self.module.name.rpartition(".")[0]
        parts = package.split(".") if package else []
        if node.level - 1 >= len(parts) or not package:
            return None
        base = parts[: len(parts) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)


def _every(results: Iterable[bool]) -> bool:
    """all(), without stopping at the first False: every import is resolved and every absence recorded."""
    return all(list(results))
