"""`relay lock`: resolve each function's and layer's `.in` into a hashed lock.

Locks are resolved for the Lambda target, not the machine running relay:
pip-compile runs under the runtime's Python (from relay's tool venv), or uv
resolves with `--python-version` and `--python-platform`. The tool's output is
then made host-independent (no absolute paths, no index options) and gets
relay's header, so the same project locks to the same bytes in any folder.
`--check` resolves nothing: it compares each lock's header with its inputs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import attrs

from builder.bundle import pythons
from builder.bundle.lockfile import (
    LockHeader,
    input_sha256,
    lock_path_for,
    logical_lines,
    parse_header,
    parse_lock,
    with_header,
)
from builder.bundle.subproc import run
from builder.config import Project
from builder.errors import ConfigError, LockError, LockStale
from builder.frozen import to_tuple
from builder.progress import Reporter, SilentReporter
from builder.textfmt import table

COMPILE_COMMAND = "relay lock"
RESOLVERS = ("auto", "pip-tools", "uv")
MAX_PARALLEL = 4
_STEP = "lock"
# uv names glibc levels it knows; python3.11 runs on Amazon Linux 2 (glibc 2.26),
# for which the newest level uv offers that AL2 can load is 2.17 (manylinux2014).
_UV_GLIBC = {"python3.11": "2_17", "python3.12": "2_34", "python3.13": "2_34"}
_UV_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
_EMITTED_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "--trusted-host", "-i ", "-f ")
_ABSOLUTE_PATH = re.compile(r"(?<=\s)(/[^\s,]+)")


# --- what to lock ---------------------------------------------------------------------------


@attrs.frozen
class LockTarget:
    kind: str  # "function" | "layer"
    name: str
    source: Path  # the .in file
    architecture: str  # what uv resolves for; layers resolve for x86_64

    @property
    def lock(self) -> Path:
        return lock_path_for(self.source)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def lock_targets(project: Project, names: Sequence[str] = ()) -> list[LockTarget]:
    """Every function and layer with requirements, or those named (a name may be both)."""
    targets = [
        *(LockTarget("layer", lay.name, lay.requirements, "x86_64")
          for lay in project.layers.values() if lay.requirements),
        *(LockTarget("function", fn.name, fn.requirements, fn.architecture)
          for fn in project.functions.values() if fn.requirements),
    ]
    if not names:
        return targets
    known = set(project.functions) | set(project.layers)
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(
            f"{project.config_file.name}: no function or layer named {', '.join(map(repr, unknown))}",
            hint=f"Known functions and layers: {', '.join(sorted(known))}.",
        )
    return [t for t in targets if t.name in names]


# --- results --------------------------------------------------------------------------------


@attrs.frozen
class LockOutcome:
    target: LockTarget
    root: Path
    status: str  # locked | unchanged | ok | missing | stale
    reason: str | None = None
    resolver: str | None = None
    python: str | None = None  # e.g. "python3.12": the Python the lock was resolved under
    packages: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    sha256: str | None = None

    @property
    def problem(self) -> bool:
        return self.status in ("missing", "stale")

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def to_json(self) -> dict:
        return {
            "kind": self.target.kind,
            "name": self.target.name,
            "input": self.relative(self.target.source),
            "lock": self.relative(self.target.lock),
            "status": self.status,
            "reason": self.reason,
            "resolver": self.resolver,
            "python": self.python,
            "packages": list(self.packages),
            "sha256": self.sha256,
        }


@attrs.frozen
class LockResult:
    runtime: str
    check: bool
    outcomes: tuple[LockOutcome, ...] = attrs.field(converter=to_tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def problems(self) -> tuple[LockOutcome, ...]:
        return tuple(o for o in self.outcomes if o.problem)

    def to_json(self) -> dict:
        return {
            "runtime": self.runtime,
            "check": self.check,
            "ok": not self.problems,
            "locks": [o.to_json() for o in self.outcomes],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        if not self.outcomes:
            return "Nothing to lock: no function or layer has requirements."
        rows = [[o.status, o.target.label, o.relative(o.target.lock), _detail(o)] for o in self.outcomes]
        lines = [table(rows, ["status", "target", "lock", "detail"])]
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def raise_for_check(self) -> None:
        """Raise LockStale naming each missing or stale lock (only after `--check`)."""
        if not (self.check and self.problems):
            return
        named = "; ".join(f"{o.relative(o.target.lock)} ({o.status}: {o.reason})" for o in self.problems)
        raise LockStale(f"{len(self.problems)} lock(s) missing or stale: {named}")


def _detail(outcome: LockOutcome) -> str:
    if outcome.reason:
        return outcome.reason
    parts = [f"{len(outcome.packages)} packages"]
    if outcome.resolver:
        parts.append(f"{outcome.resolver} under {outcome.python}")
    return ", ".join(parts)


# --- the entry point ------------------------------------------------------------------------


def lock_project(
    project: Project,
    names: Sequence[str] = (),
    *,
    check: bool = False,
    resolver: str = "auto",
    upgrade: bool = False,
    reporter: Reporter | None = None,
) -> LockResult:
    reporter = reporter or SilentReporter()
    targets = lock_targets(project, names)
    if check:
        outcomes = [check_target(project, target) for target in targets]
        return LockResult(runtime=project.runtime, check=True, outcomes=outcomes)
    if not targets:
        return LockResult(runtime=project.runtime, check=False, outcomes=())
    _refuse_shared_inputs(targets)
    # An .in with only comments needs no resolver (nor a tool venv, nor the network).
    needed = any(_has_requirements(t.source.read_text(encoding="utf-8")) for t in targets)
    chosen = create_resolver(resolver, project.runtime, reporter) if needed else None
    outcomes = _lock_all(project, targets, chosen, upgrade, reporter)
    return LockResult(runtime=project.runtime, check=False, outcomes=outcomes, notes=chosen.notes if chosen else ())


def _lock_all(project: Project, targets: list[LockTarget], resolver: Resolver | None, upgrade: bool,
              reporter: Reporter) -> list[LockOutcome]:
    def one(target: LockTarget) -> LockOutcome:
        reporter.step(f"locking {target.label}" + (f" with {resolver.name}" if resolver else ""))
        return lock_target(project, target, resolver, upgrade=upgrade)

    # Targets sharing one .in (same architecture) are resolved once.
    firsts: dict[Path, LockTarget] = {}
    for target in targets:
        firsts.setdefault(target.source.resolve(), target)
    # Resolving is mostly waiting on the index, so a few run at once.
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(firsts))) as pool:
        done = dict(zip(firsts, pool.map(one, firsts.values()), strict=False))
    return [attrs.evolve(done[t.source.resolve()], target=t) for t in targets]


def _refuse_shared_inputs(targets: list[LockTarget]) -> None:
    # Two targets writing one lock at once would race, and uv could resolve
    # them differently (arm64 vs x86_64); say so rather than pick one.
    seen: dict[Path, LockTarget] = {}
    for target in targets:
        other = seen.setdefault(target.source.resolve(), target)
        if other is not target and other.architecture != target.architecture:
            raise ConfigError(
                f"{other.label} ({other.architecture}) and {target.label} ({target.architecture}) "
                f"share {target.source.name}; one lock cannot serve both architectures",
                hint="Give each architecture its own requirements .in file.",
            )


# --- checking -------------------------------------------------------------------------------


def check_target(project: Project, target: LockTarget) -> LockOutcome:
    """ok, missing or stale, from the lock's header alone: nothing is resolved."""
    base = LockOutcome(target=target, root=project.root, status="ok")
    if not target.lock.is_file():
        return attrs.evolve(base, status="missing", reason="no lock file")
    data = target.lock.read_bytes()
    header = parse_header(data.decode("utf-8", errors="replace"))
    reason = _staleness(header, input_sha256(target.source), project.runtime)
    if reason is None:
        try:
            lock = parse_lock(data, target.lock)
        except LockError as exc:
            reason = exc.reason
        else:
            python = header.resolved_under or project.runtime
            return attrs.evolve(base, packages=lock.packages, sha256=lock.sha256, python=python)
    return attrs.evolve(base, status="stale", reason=reason)


def _staleness(header: LockHeader, expected_input: str, runtime: str) -> str | None:
    if header.input_sha256 is None:
        return "no relay-lock header (not written by relay lock)"
    if header.input_sha256 != expected_input:
        return "the .in file (or a file it includes) changed"
    if header.runtime != runtime:
        return f"locked for {header.runtime}, the runtime is {runtime}"
    return None


# --- locking one target ---------------------------------------------------------------------


@attrs.frozen
class CompileRequest:
    root: Path  # the tools run here, so paths they print are relative to it
    source: str  # the .in, relative to root (posix)
    seed: str | None  # the current lock: its pins are kept unless upgrading
    runtime: str
    architecture: str
    upgrade: bool


class Resolver(Protocol):
    name: str
    python: str  # "python3.12": what markers are evaluated for
    notes: tuple[str, ...]

    def compile(self, request: CompileRequest) -> str:
        """The tool's lock text for `request`."""


def lock_target(project: Project, target: LockTarget, resolver: Resolver | None, *,
                upgrade: bool = False) -> LockOutcome:
    """Resolve one target and write its lock when the bytes changed.

    `resolver` may be None only for an `.in` without requirements.
    """
    source_text = target.source.read_text(encoding="utf-8")
    if not _has_requirements(source_text):
        resolver = None  # only comments: nothing to resolve, and no tool needed
    elif resolver is None:
        raise LockError(_STEP, f"{target.label}: no resolver given for {target.source.name}")
    python = resolver.python if resolver else project.runtime
    header = LockHeader(
        input_sha256=input_sha256(target.source),
        runtime=project.runtime,
        resolved_under=None if python == project.runtime else python,
    )
    body = ""
    if resolver is not None:
        request = CompileRequest(
            root=project.root,
            source=_relative(target.source, project.root),
            seed=target.lock.read_text(encoding="utf-8") if target.lock.is_file() else None,
            runtime=project.runtime,
            architecture=target.architecture,
            upgrade=upgrade,
        )
        body = normalise(resolver.compile(request), project.root)
    data = with_header(body, header).encode("utf-8")
    lock = parse_lock(data, target.lock)  # refuse, before writing, what installs would refuse
    changed = _write_if_changed(target.lock, data)
    return LockOutcome(
        target=target,
        root=project.root,
        status="locked" if changed else "unchanged",
        resolver=resolver.name if resolver else None,
        python=python,
        packages=lock.packages,
        sha256=lock.sha256,
    )


def _has_requirements(text: str) -> bool:
    return bool(logical_lines(text))


TOOL_BANNER = "# Resolved by `relay lock` for the Lambda runtime; edit requirements.in, not this file."


def normalise(text: str, root: Path) -> str:
    """The tool's output without what depends on the host or the resolver.

    Absolute paths become relative and index options go. The resolver's own
    banner (pip-compile and uv word it differently) is replaced by ours, so
    both resolvers write the same bytes for the same pins.
    """
    raw = text.replace("\r\n", "\n").splitlines()
    while raw and (raw[0].startswith("#") or not raw[0].strip()):
        raw.pop(0)
    lines = [TOOL_BANNER]
    for line in raw:
        if line.startswith(_EMITTED_OPTIONS):
            continue
        if line.lstrip().startswith("#"):
            line = _ABSOLUTE_PATH.sub(lambda m: _portable_path(m.group(1), root), line)
        lines.append(line.rstrip())
    return "\n".join(lines).strip("\n") + "\n"


def _portable_path(path: str, root: Path) -> str:
    # Inside the project: relative to its root. Outside (e.g. a constraints file
    # from the machine's pip config): the name alone, which is the same everywhere.
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return candidate.name


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True


# --- resolvers ------------------------------------------------------------------------------


def create_resolver(choice: str, runtime: str, reporter: Reporter) -> Resolver:
    """`auto` is uv when it is installed, else pip-tools."""
    if choice not in RESOLVERS:
        raise ConfigError(f"unknown resolver {choice!r}", hint=f"Use one of: {', '.join(RESOLVERS)}.")
    uv = find_uv()
    if choice == "uv" and uv is None:
        raise LockError(_STEP, "--resolver uv: uv is not installed", hint="pip install uv (or use --resolver pip-tools).")
    if choice in ("uv", "auto") and uv is not None:
        return UvResolver.for_runtime(uv, runtime)
    return PipToolsResolver.for_runtime(runtime, reporter)


def find_uv() -> Path | None:
    """uv on PATH, or next to the running Python (relay's venv, not always on PATH)."""
    on_path = shutil.which("uv")
    if on_path:
        return Path(on_path)
    beside = Path(sys.executable).parent / "uv"
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None


@attrs.frozen
class PipToolsResolver:
    interpreter: Path
    python: str
    notes: tuple[str, ...] = ()
    name: str = "pip-tools"

    @classmethod
    def for_runtime(cls, runtime: str, reporter: Reporter) -> PipToolsResolver:
        """pip-compile under the runtime's Python; the running one when that is missing."""
        version = runtime.removeprefix("python")
        if version == pythons.running_version():
            return cls(interpreter=Path(sys.executable), python=runtime)
        found = pythons.find_python(version)
        if found is None:
            running = f"python{pythons.running_version()}"
            note = (f"{runtime} is not installed here: locks were resolved under {running}, so markers "
                    f"such as python_version were evaluated for {running}; install {runtime} and rerun")
            reporter.note(note)
            return cls(interpreter=Path(sys.executable), python=running, notes=(note,))
        reporter.step(f"preparing pip-tools for {runtime}")
        return cls(interpreter=pythons.tool_python(version, found), python=runtime)

    def compile(self, request: CompileRequest) -> str:
        with tempfile.TemporaryDirectory(prefix="relay-lock-") as scratch:
            output = Path(scratch) / "requirements.txt"
            if request.seed is not None:
                output.write_text(request.seed, encoding="utf-8")
            run(
                [self.interpreter, "-m", "piptools", "compile", "--generate-hashes", "--allow-unsafe",
                 "--strip-extras", "--no-emit-index-url", "--no-emit-trusted-host", "--no-emit-find-links",
                 "--resolver=backtracking", "--quiet", *(["--upgrade"] if request.upgrade else []),
                 "--output-file", output, request.source],
                step=f"{_STEP} {request.source}",
                cwd=request.root,
                env={"CUSTOM_COMPILE_COMMAND": COMPILE_COMMAND},
                error=LockError,
                hint="Check the requirement names and version ranges in the .in file.",
            )
            return output.read_text(encoding="utf-8")


@attrs.frozen
class UvResolver:
    uv: Path
    interpreter: Path  # only for building sdists; resolution targets `python`
    python: str
    notes: tuple[str, ...] = ()
    name: str = "uv"

    @classmethod
    def for_runtime(cls, uv: Path, runtime: str) -> UvResolver:
        # uv resolves for --python-version whatever interpreter it is given, but
        # without one of that version it would try to download one: hand it one.
        found = pythons.find_python(runtime.removeprefix("python"))
        return cls(uv=uv, interpreter=found or Path(sys.executable), python=runtime)

    def compile(self, request: CompileRequest) -> str:
        with tempfile.TemporaryDirectory(prefix="relay-lock-") as scratch:
            output = Path(scratch) / "requirements.txt"
            if request.seed is not None:
                output.write_text(request.seed, encoding="utf-8")
            run(
                [self.uv, "pip", "compile", "--generate-hashes", "--quiet",
                 "--python-version", request.runtime.removeprefix("python"),
                 "--python-platform", uv_platform(request.runtime, request.architecture),
                 "--python", self.interpreter, "--no-python-downloads",
                 "--custom-compile-command", COMPILE_COMMAND,
                 *(["--upgrade"] if request.upgrade else []),
                 "--output-file", output, request.source],
                step=f"{_STEP} {request.source}",
                cwd=request.root,
                error=LockError,
                hint="Check the requirement names and version ranges in the .in file.",
            )
            return output.read_text(encoding="utf-8")


def uv_platform(runtime: str, architecture: str) -> str:
    """`x86_64-manylinux_2_34` for python3.12 on x86_64: what Lambda's Linux accepts."""
    return f"{_UV_MACHINE[architecture]}-manylinux_{_UV_GLIBC[runtime]}"

