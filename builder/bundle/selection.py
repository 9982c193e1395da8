"""What a bundle ships from the project tree: each file with the rule that kept it, and what was left out and why.

One home for the question "which of my files go into this zip". A function
ships either its `source` folder's contents at the zip root, or, with
`packages = ["app", ...]`, those folders (relative to `source`, by default the
project root) under their own names. A layer ships the importable code of its
local package folders under `python/`. Then, in this order:

1. always out, whatever the patterns say: relay's output folder and caches,
   `.relay/`, VCS folders, virtualenvs (`.venv`, `venv`, any folder holding
   `pyvenv.cfg`), `__pycache__`, `node_modules`, `cdk.out`, `.aws-sam`;
2. `exclude` patterns (gitignore semantics, matched by `pathspec`): relay's
   defaults, then `[app] exclude`, then the function's or layer's own, so a
   later `!pattern` re-includes what an earlier one left out;
3. inside a git work tree, files git ignores (unless a `!pattern` in
   `exclude` names them);
4. `include` patterns, when any are given (`[app]`'s and the bundle's): only
   files they match are shipped.

A kept file that looks like a private key or credentials is a *secret*: the
build stops naming it (`SecretsRefused`, exit 4, before anything is written)
unless `allow_secrets` names it. Patterns and `allow_secrets` paths are
relative to the source root (a layer's: the package folder named in
`packages`; `[app] allow_secrets`: the project root). Nothing here writes.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import attrs
from pathspec import GitIgnoreSpec

from builder.bundle.gitinfo import GitView
from builder.config import Function, Layer, Project
from builder.errors import BuildFailed, ConfigError
from builder.frozen import to_tuple
from builder.paths import cache_dir

if TYPE_CHECKING:
    from builder.bundle.zipwriter import ZipEntry

STEP = "select"
LAYER_ROOT = "python"
# Left out unless a pattern says otherwise (`!requirements.txt` ships it).
DEFAULT_EXCLUDE = (
    "__pycache__/",
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
    "requirements*.in",
    "requirements*.txt",
)
# Folders (and a few files) that never ship, whatever the patterns say: name -> why.
ALWAYS_OUT = {
    ".git": "VCS folder",
    ".hg": "VCS folder",
    ".svn": "VCS folder",
    ".relay": "relay's local state (signing key)",
    ".venv": "virtualenv",
    "venv": "virtualenv",
    "__pycache__": "bytecode cache",
    "node_modules": "node modules",
    "cdk.out": "CDK output",
    ".aws-sam": "SAM output",
}
# Files of a layer's local package folder that are project plumbing, not importable code.
_NOT_CODE = {"setup.py", "conftest.py", "noxfile.py", "tasks.py"}
# How much of a file is read to look for a PEM private key block.
SNIFF_BYTES = 8192
_PEM_PRIVATE = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_NPM_TOKEN = re.compile(rb"_auth(?:Token)?\s*=")
_SECRET_NAMES = (
    (re.compile(r"^\.env"), ".env file"),
    (re.compile(r"\.pem$"), "*.pem"),
    (re.compile(r"\.key$"), "*.key"),
    (re.compile(r"^id_(?:rsa|dsa|ecdsa|ed25519)(?!.*\.pub$)"), "SSH private key"),
    (re.compile(r"^\.netrc$"), ".netrc"),
    (re.compile(r"^\.pypirc$"), ".pypirc"),
    (re.compile(r"^\.git-credentials$"), ".git-credentials"),
)


class Why(enum.StrEnum):
    """The kinds of rule that keep or drop a path."""

    SOURCE = "source"  # kept: in the source folder
    PACKAGE = "package"  # kept: in a package folder
    INCLUDE = "include"  # kept: matched by an include pattern
    REINCLUDED = "re-included"  # kept: a `!pattern` in exclude
    ALLOWED_SECRET = "allowed secret"  # kept: looks like a secret, named in allow_secrets
    ALWAYS_OUT = "always out"
    EXCLUDE = "exclude"
    GITIGNORED = "ignored by git"
    NOT_INCLUDED = "not included"
    OUTSIDE = "outside packages"
    NOT_CODE = "not importable code"


@attrs.frozen
class Rule:
    why: Why
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.why}: {self.detail}" if self.detail else str(self.why)

    def to_json(self) -> dict:
        return {"rule": str(self.why), "detail": self.detail}


@attrs.frozen
class Picked:
    """A file the bundle ships."""

    rel: str  # relative to the source root
    path: str  # relative to the project root: what the source digest and git provenance name
    archive: str  # path inside the zip
    source: Path
    executable: bool
    rule: Rule

    def to_json(self) -> dict:
        return {"path": self.path, "archive": self.archive, **self.rule.to_json()}


@attrs.frozen
class Dropped:
    """A path left out (relative to the project root); a folder (ending in "/") stands for everything under it."""

    path: str
    rule: Rule

    def to_json(self) -> dict:
        return {"path": self.path, **self.rule.to_json()}


@attrs.frozen
class Secret:
    """A kept file that looks like a private key or credentials."""

    rel: str  # relative to the source root
    path: str  # relative to the project root
    reason: str
    allow_key: str  # the config key that would allow it

    def to_json(self) -> dict:
        return {"path": self.rel, "project_path": self.path, "reason": self.reason, "allow_with": self.allow_key}


@attrs.frozen
class Selection:
    """Exactly what one bundle ships from the project tree, and what it left out."""

    kind: str  # "function" | "layer"
    name: str
    root: str  # the source root, relative to the project root ("." for the root itself)
    packages: tuple[str, ...] = attrs.field(converter=to_tuple)  # package folders, relative to the project root
    files: tuple[Picked, ...] = attrs.field(converter=to_tuple)
    dropped: tuple[Dropped, ...] = attrs.field(converter=to_tuple)
    secrets: tuple[Secret, ...] = attrs.field(converter=to_tuple)  # kept by the rules but not allowed: the build stops
    git: str  # how git's ignore rules were used
    # Every folder the walk listed and every path it only asked about (does X/__init__.py exist?): what decides
    # the selection besides the config and git, so what the no-op stamp watches.
    looked_at: tuple[Path, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def paths(self) -> tuple[str, ...]:
        """The project-relative folders the files come from (the manifest's `source.paths`)."""
        return self.packages if self.packages else (self.root,)

    def entries(self, prefix: str = "") -> list[ZipEntry]:
        from builder.bundle.zipwriter import ZipEntry

        return [ZipEntry(path=f"{prefix}{p.archive}", source=p.source, executable=p.executable) for p in self.files]

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "root": self.root,
            "packages": list(self.packages),
            "git": self.git,
            "files": [p.to_json() for p in self.files],
            "dropped": [d.to_json() for d in self.dropped],
            "secrets": [s.to_json() for s in self.secrets],
        }


class SecretsRefused(BuildFailed):
    """Files that look like secrets would ship (exit 4, step `select`): nothing was built or written."""

    def __init__(self, secrets: Sequence[tuple[str, Secret]]) -> None:
        named = "; ".join(f"{label}: {s.path} ({s.reason})" for label, s in secrets)
        by_key: dict[str, list[str]] = {}
        for _, secret in secrets:
            by_key.setdefault(secret.allow_key, []).append(json.dumps(secret.rel))
        allow = "; ".join(f"{key} = [{', '.join(rels)}]" for key, rels in sorted(by_key.items()))
        super().__init__(
            STEP,
            f"{len(secrets)} file(s) that look like secrets would ship: {named}",
            hint=f"Remove them, leave them out with `exclude`, or, if one really must ship, allow it: {allow}.",
        )
        self.secrets = tuple(secrets)


def refuse_secrets(selections: Iterable[Selection]) -> None:
    """Stop the build when any selection holds a secret nobody allowed, naming every one."""
    found = [(s.label, secret) for s in selections for secret in s.secrets]
    if found:
        raise SecretsRefused(found)


# -- selecting ---------------------------------------------------------------------------------------


def select_function(project: Project, fn: Function, git: GitView, *, scan: bool = True) -> Selection:
    """What function `fn` ships; `scan=False` skips reading files for secrets (the no-op stamp)."""
    key = f"functions.{fn.name}"
    rules = _Rules.make(project, key, fn.source, fn.include, fn.exclude, fn.allow_secrets, git)
    walker = _Walker(project, rules, fn.source)
    if fn.packages:
        _check_packages(project, key, fn.source, fn.packages)
        walker.looked += [fn.source / p for p in fn.packages]
        wanted = {PurePosixPath(p).as_posix() for p in fn.packages}
        walker.outside(wanted)
        for rel in sorted(wanted):
            walker.walk(fn.source / rel, rel, f"{PurePosixPath(rel).name}/", Rule(Why.PACKAGE, rel))
        packages = tuple(_rel(fn.source / p, project.root) for p in sorted(wanted))
    else:
        walker.walk(fn.source, "", "", Rule(Why.SOURCE, _rel(fn.source, project.root)))
        packages = ()
    return walker.selection("function", fn.name, _rel(fn.source, project.root), packages, scan=scan)


def select_layer(project: Project, layer: Layer, git: GitView, *, scan: bool = True) -> Selection:
    """The importable code of `layer`'s local package folders, under `python/`."""
    key = f"layers.{layer.name}"
    picked: list[Picked] = []
    dropped: list[Dropped] = []
    secrets: list[Secret] = []
    looked: list[Path] = []
    for folder in layer.packages:
        rules = _Rules.make(project, key, folder, layer.include, layer.exclude, layer.allow_secrets, git)
        walker = _Walker(project, rules, folder)
        _layer_package(walker, folder)
        part = walker.selection("layer", layer.name, ".", (), scan=scan)
        if not part.files:
            raise BuildFailed(
                "layout",
                f"local package folder {_rel(folder, project.root)} holds no importable package",
                hint="Point `packages` at a folder with __init__.py, or at a project holding one (optionally under src/).",
            )
        picked += [attrs.evolve(p, archive=f"{LAYER_ROOT}/{p.archive}") for p in part.files]
        dropped += part.dropped
        secrets += part.secrets
        looked += part.looked_at
    return Selection(kind="layer", name=layer.name, root=".", packages=[_rel(f, project.root) for f in layer.packages],
                     files=picked, dropped=dropped, secrets=secrets, git=_git_note(git), looked_at=looked)


def _layer_package(walker: _Walker, folder: Path) -> None:
    """A package folder ships under its own name; a project folder ships the packages and modules in it (or in src/)."""
    shown = walker.rules.shown(folder)
    walker.looked += [folder / "__init__.py", folder / "src"]
    if (folder / "__init__.py").is_file():
        walker.walk(folder, "", f"{folder.name}/", Rule(Why.PACKAGE, shown))
        return
    base_rel = "src" if (folder / "src").is_dir() else ""
    if base_rel:
        walker.drop_siblings(folder, {"src"}, Rule(Why.NOT_CODE))
    for item in walker.scan(folder / base_rel if base_rel else folder):
        rel = f"{base_rel}/{item.name}" if base_rel else item.name
        if item.is_dir(follow_symlinks=False):
            walker.looked.append(Path(item.path) / "__init__.py")
        package = item.is_dir(follow_symlinks=False) and (Path(item.path) / "__init__.py").is_file()
        module = item.is_file(follow_symlinks=False) and item.name.endswith(".py") and item.name not in _NOT_CODE
        if package or module:
            walker.visit(item, rel, item.name, Rule(Why.PACKAGE, shown))
        else:
            is_dir = item.is_dir(follow_symlinks=False)
            walker.drop(item, is_dir, walker.always_out(item, is_dir) or Rule(Why.NOT_CODE))


# -- the rules ---------------------------------------------------------------------------------------


@attrs.frozen
class _Rules:
    project: Project
    key: str  # "functions.orders" / "layers.common": where the bundle's own keys live
    root: Path  # the source root patterns are relative to
    exclude: GitIgnoreSpec
    exclude_origin: tuple[str, ...]  # per pattern: which key it came from
    include: GitIgnoreSpec | None
    include_origin: tuple[str, ...]
    allow_here: frozenset[str]  # relative to the source root
    allow_project: frozenset[str]  # [app] allow_secrets: relative to the project root
    git: GitView
    dist: Path
    cache: Path

    @classmethod
    def make(cls, project: Project, key: str, root: Path, include: Sequence[str], exclude: Sequence[str],
             allow: Sequence[str], git: GitView) -> _Rules:
        excludes = [(p, origin) for p, origin in [*((p, "default exclude") for p in DEFAULT_EXCLUDE),
                                                  *((p, "[app] exclude") for p in project.exclude),
                                                  *((p, f"{key}.exclude") for p in exclude)] if p.strip()]
        includes = [(p, origin) for p, origin in [*((p, "[app] include") for p in project.include),
                                                  *((p, f"{key}.include") for p in include)] if p.strip()]
        return cls(
            project=project, key=key, root=root,
            exclude=_spec([p for p, _ in excludes], f"{key}.exclude"),
            exclude_origin=tuple(origin for _, origin in excludes),
            include=_spec([p for p, _ in includes], f"{key}.include") if includes else None,
            include_origin=tuple(origin for _, origin in includes),
            allow_here=frozenset(_norm(p) for p in allow),
            allow_project=frozenset(_norm(p) for p in project.allow_secrets),
            git=git,
            dist=_resolved(project.dist_dir),
            cache=_resolved(cache_dir()),
        )

    def shown(self, path: Path) -> str:
        return _rel(path, self.project.root)

    def always_out(self, entry: os.DirEntry, is_dir: bool) -> Rule | None:
        path = Path(entry.path)
        if is_dir:
            if entry.name in ALWAYS_OUT:
                return Rule(Why.ALWAYS_OUT, ALWAYS_OUT[entry.name])
            resolved = _resolved(path)
            if resolved == self.dist:
                return Rule(Why.ALWAYS_OUT, f"relay's output folder ({self.project.dist.as_posix()})")
            if resolved == self.cache:
                return Rule(Why.ALWAYS_OUT, "relay's cache")
            if (path / "pyvenv.cfg").is_file():
                return Rule(Why.ALWAYS_OUT, "virtualenv (pyvenv.cfg)")
        elif entry.name == ".git":  # a worktree's or submodule's pointer file
            return Rule(Why.ALWAYS_OUT, ALWAYS_OUT[".git"])
        return None

    def excluded(self, rel: str, is_dir: bool) -> tuple[Rule | None, Rule | None]:
        """(the exclude rule that drops `rel`, the `!pattern` that re-includes it), at most one set."""
        result = self.exclude.check_file(f"{rel}/" if is_dir else rel)
        if result.include is None or result.index is None:
            return None, None
        pattern = _pattern_text(self.exclude, result.index)
        rule = Rule(Why.EXCLUDE if result.include else Why.REINCLUDED, f"{pattern} ({self.exclude_origin[result.index]})")
        return (rule, None) if result.include else (None, rule)

    def included(self, rel: str) -> Rule | None:
        """The include pattern that keeps `rel`; None when includes are given and none matches."""
        assert self.include is not None
        result = self.include.check_file(rel)
        if not result.include or result.index is None:
            return None
        pattern = _pattern_text(self.include, result.index)
        return Rule(Why.INCLUDE, f"{pattern} ({self.include_origin[result.index]})")

    def secret(self, rel: str, path: Path, scan: bool) -> str | None:
        """Why the file at `rel` looks like a secret, or None."""
        name = PurePosixPath(rel).name
        if ".aws" in PurePosixPath(rel).parts[:-1]:
            return "under .aws/"
        for pattern, why in _SECRET_NAMES:
            if pattern.search(name):
                return f"named like a secret: {why}"
        if not scan:
            return None
        head = _head(path)
        if name == ".npmrc" and _NPM_TOKEN.search(head):
            return "an .npmrc holding a token"
        if _PEM_PRIVATE.search(head):
            return "holds a PEM private key"
        return None

    def allowed(self, rel: str, project_rel: str) -> bool:
        return rel in self.allow_here or project_rel in self.allow_project


# -- the walk ----------------------------------------------------------------------------------------


class _Walker:
    """Walks one source root, recording what is kept and what is dropped (pruning dropped folders)."""

    def __init__(self, project: Project, rules: _Rules, root: Path) -> None:
        self.project = project
        self.rules = rules
        self.root = root
        self.picked: list[Picked] = []
        self.dropped: list[Dropped] = []
        self.looked: list[Path] = []  # `Selection.looked_at`

    def outside(self, packages: set[str]) -> None:
        """Name the top-level items of the root that are not (and do not hold) a package folder."""
        self.drop_siblings(self.root, {PurePosixPath(p).parts[0] for p in packages}, Rule(Why.OUTSIDE))

    def drop_siblings(self, folder: Path, keep: set[str], rule: Rule) -> None:
        # Only names what is left out: not among `looked`, since nothing here can ship.
        for item in _scan(folder):
            if item.name not in keep:
                is_dir = item.is_dir(follow_symlinks=False)
                self.drop(item, is_dir, self.rules.always_out(item, is_dir) or rule)

    def scan(self, folder: Path) -> list[os.DirEntry]:
        self.looked.append(folder)
        return _scan(folder)

    def always_out(self, item: os.DirEntry, is_dir: bool) -> Rule | None:
        if is_dir:
            self.looked.append(Path(item.path) / "pyvenv.cfg")
        return self.rules.always_out(item, is_dir)

    def drop(self, item: os.DirEntry, is_dir: bool, rule: Rule) -> None:
        self.dropped.append(Dropped(self._project_rel(item) + ("/" if is_dir else ""), rule))

    def walk(self, folder: Path, rel: str, archive: str, kept: Rule) -> None:
        """Walk `folder` (`rel` to the root; its files go under `archive` in the zip)."""
        if not folder.is_dir():
            raise BuildFailed(STEP, f"{folder} is not a folder", hint="Check the folder named in relay.toml.")
        picked_before, dropped_before = len(self.picked), len(self.dropped)
        for item in self.scan(folder):
            item_rel = f"{rel}/{item.name}" if rel else item.name
            self.visit(item, item_rel, f"{archive}{item.name}", kept)
        self._fold(folder, rel, picked_before, dropped_before)

    def visit(self, item: os.DirEntry, rel: str, archive: str, kept: Rule, reincluded: bool = False) -> None:
        """Keep or drop one file or folder (`rel` to the root, `archive` its path in the zip)."""
        is_dir = item.is_dir(follow_symlinks=False)
        drop = self.always_out(item, is_dir)
        again = None
        if drop is None:
            drop, again = self.rules.excluded(rel, is_dir)
        if drop is None and again is None and not reincluded and self.rules.git.ignores(self._project_rel(item)):
            drop = Rule(Why.GITIGNORED)
        if drop is not None:
            self.drop(item, is_dir, drop)
        elif is_dir:
            picked_before, dropped_before = len(self.picked), len(self.dropped)
            for child in self.scan(Path(item.path)):
                self.visit(child, f"{rel}/{child.name}", f"{archive}/{child.name}", kept,
                           reincluded or again is not None)
            self._fold(Path(item.path), rel, picked_before, dropped_before)
        else:
            self._file(item, rel, archive, again or kept)

    def _file(self, item: os.DirEntry, rel: str, archive: str, kept: Rule) -> None:
        if item.is_symlink():
            raise BuildFailed(
                STEP,
                f"{item.path} is a symlink; relay does not follow links out of the source tree",
                hint="Replace the link with the file or folder it points to, or exclude it.",
            )
        if not _utf8(item.path):  # a zip entry's name is UTF-8 (Lambda unpacks it so): refused, shown escaped
            raise BuildFailed(STEP, f"{str(os.fsencode(item.path))[2:-1]}: the file name is not UTF-8, which a Lambda zip "
                              "cannot hold", hint="Rename the file (or exclude it in relay.toml).")
        if not item.is_file(follow_symlinks=False):
            raise BuildFailed(STEP, f"{item.path} is not a regular file or folder (a socket, fifo or device)",
                              hint="Remove it from the source tree or exclude it.")
        if self.rules.include is not None and kept.why is not Why.REINCLUDED:
            matched = self.rules.included(rel)
            if matched is None:
                self.drop(item, False, Rule(Why.NOT_INCLUDED))
                return
            kept = matched
        executable = bool(item.stat(follow_symlinks=False).st_mode & 0o111)
        self.picked.append(Picked(rel=rel, path=self._project_rel(item), archive=archive, source=Path(item.path),
                                  executable=executable, rule=kept))

    def _fold(self, folder: Path, rel: str, picked_before: int, dropped_before: int) -> None:
        # A folder nothing of which ships, all for one reason, is named once.
        if not rel or len(self.picked) != picked_before:
            return
        inner = self.dropped[dropped_before:]
        if inner and len({d.rule for d in inner}) == 1:
            del self.dropped[dropped_before:]
            self.dropped.append(Dropped(_rel(folder, self.project.root) + "/", inner[0].rule))

    def _project_rel(self, item: os.DirEntry) -> str:
        return _rel(Path(item.path), self.project.root)

    def selection(self, kind: str, name: str, root: str, packages: Sequence[str], *, scan: bool) -> Selection:
        picked: list[Picked] = []
        secrets: list[Secret] = []
        allow_key = f"{self.rules.key}.allow_secrets"
        for p in self.picked:
            reason = self.rules.secret(p.rel, p.source, scan)
            if reason is None:
                picked.append(p)
            elif self.rules.allowed(p.rel, p.path):
                picked.append(attrs.evolve(p, rule=Rule(Why.ALLOWED_SECRET, f"{reason} ({allow_key})")))
            else:
                secrets.append(Secret(rel=p.rel, path=p.path, reason=reason, allow_key=allow_key))
        picked.sort(key=lambda p: p.archive.encode())
        dropped = sorted(self.dropped, key=lambda d: os.fsencode(d.path))  # a dropped name need not be UTF-8
        return Selection(kind=kind, name=name, root=root, packages=packages, files=picked, dropped=dropped,
                         secrets=secrets, git=_git_note(self.rules.git), looked_at=self.looked)


# -- helpers -----------------------------------------------------------------------------------------


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_packages(project: Project, key: str, source: Path, packages: Sequence[str]) -> None:
    shown = f"{project.config_file.name}: {key}.packages"
    names: dict[str, str] = {}
    normal = [PurePosixPath(p) for p in packages]
    for index, pkg in enumerate(normal):
        if pkg.is_absolute() or ".." in pkg.parts or pkg.as_posix() in ("", "."):
            raise ConfigError(f"{shown}[{index}]: {packages[index]!r} must be a folder inside the source root",
                              hint="Name package folders relative to `source` (the project root by default), e.g. \"app\".")
        if not (source / pkg).is_dir():
            raise ConfigError(f"{shown}[{index}]: expected a folder at {_rel(source / pkg, project.root)}, found none")
        other = names.setdefault(pkg.name, pkg.as_posix())
        if other != pkg.as_posix():
            raise ConfigError(f"{shown}: {other!r} and {pkg.as_posix()!r} would both ship as {pkg.name}/ at the zip root",
                              hint="Each package folder ships under its own name: the names must differ.")
        for second in normal[index + 1:]:
            if pkg in second.parents or second in pkg.parents or pkg == second:
                raise ConfigError(f"{shown}: {pkg.as_posix()!r} and {second.as_posix()!r} overlap",
                                  hint="List each package folder once, not a folder and one inside it.")


def _spec(patterns: list[str], key: str) -> GitIgnoreSpec:
    try:
        return GitIgnoreSpec.from_lines(patterns)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key}: bad pattern: {exc}",
                          hint='Use .gitignore syntax (e.g. "tests/", "*.md", "!keep.md").') from None


def _pattern_text(spec: GitIgnoreSpec, index: int) -> str:
    pattern = spec.patterns[index]
    text = getattr(pattern, "pattern", None)
    return text if isinstance(text, str) else str(pattern)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise BuildFailed(STEP, f"cannot read {path}: {exc.strerror}") from exc


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as items:
            return sorted(items, key=lambda e: e.name)
    except OSError as exc:
        raise BuildFailed(STEP, f"cannot list {folder}: {exc.strerror}") from exc


def _git_note(git: GitView) -> str:
    return "files git ignores are left out" if git.present else git.note


def _norm(path: str) -> str:
    return PurePosixPath(path).as_posix().removeprefix("./")


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path
