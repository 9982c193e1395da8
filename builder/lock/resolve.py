"""Locking: each target's requirements resolved for the Lambda target and written as a hashed lock.

A `.in` goes to the resolver as it is. A pyproject's requirements (one group's,
when named) go as a generated `.in` in a scratch folder. With `pins`, every
version the app's uv.lock/poetry.lock pins is passed as a constraints file
(`-c`), so relay's lock holds the versions the app is tested with; a pin that
contradicts a requirement, or that the resolver cannot satisfy for Lambda, is
a LockError naming the package.

The tool's output is made host-independent (no absolute paths, no scratch
paths, no index options) and gets relay's header, so the same project locks
to the same bytes in any folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder.config import Project
from builder.errors import LockError
from builder.lock.check import check_target
from builder.lock.lockfile import LockFile, LockHeader, includes, logical_lines, parse_lock, with_header
from builder.lock.resolvers import STEP, CompileRequest, Resolver, create_resolver
from builder.lock.results import LockOutcome, LockResult
from builder.lock.targets import LockTarget, lock_targets, refuse_shared_inputs
from builder.progress import Reporter, SilentReporter

if TYPE_CHECKING:
    from builder.lock.pins import Pins

MAX_PARALLEL = 4
TOOL_BANNER = "# Resolved by `relay lock` for the Lambda runtime; edit requirements.in, not this file."
GENERATED_IN = "requirements.in"  # a pyproject's requirements, written for the resolver in a scratch folder
PINS_CONSTRAINTS = "pins.txt"  # the app's pins as a constraints file, in the same scratch folder
_EMITTED_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "--trusted-host", "-i ", "-f ")
_ABSOLUTE_PATH = re.compile(r"(?<=\s)(/[^\s,]+)")


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
    refuse_shared_inputs(targets)
    # Requirements that declare nothing need no resolver (nor a tool venv, nor the network).
    needed = any(_has_requirements(t) for t in targets)
    chosen = create_resolver(resolver, project.runtime, reporter) if needed else None
    outcomes = _lock_all(project, targets, chosen, upgrade, reporter)
    return LockResult(runtime=project.runtime, check=False, outcomes=outcomes, notes=chosen.notes if chosen else ())


def _lock_all(project: Project, targets: list[LockTarget], resolver: Resolver | None, upgrade: bool,
              reporter: Reporter) -> list[LockOutcome]:
    def one(target: LockTarget) -> LockOutcome:
        reporter.step(f"locking {target.label}" + (f" with {resolver.name}" if resolver else ""))
        return lock_target(project, target, resolver, upgrade=upgrade)

    # Targets sharing one lock (one .in, same architecture: the config refuses anything else) are resolved once.
    firsts: dict[Path, LockTarget] = {}
    for target in targets:
        firsts.setdefault(target.lock.resolve(), target)
    # Resolving is mostly waiting on the index, so a few run at once.
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(firsts))) as pool:
        done = dict(zip(firsts, pool.map(one, firsts.values()), strict=False))
    return [attrs.evolve(done[t.lock.resolve()], target=t) for t in targets]


def lock_target(project: Project, target: LockTarget, resolver: Resolver | None, *,
                upgrade: bool = False) -> LockOutcome:
    """Resolve one target and write its lock when the bytes changed.

    `resolver` may be None only for requirements that declare nothing.
    """
    if not _has_requirements(target):
        resolver = None  # only comments: nothing to resolve, and no tool needed
    elif resolver is None:
        raise LockError(STEP, f"{target.label}: no resolver given for {target.reference(project.root)}")
    python = resolver.python if resolver else project.runtime
    header = LockHeader(
        input_sha256=target.input_sha256(),
        runtime=project.runtime,
        resolved_under=None if python == project.runtime else python,
    )
    body = ""
    pins = target.read_pins() if resolver else None
    if resolver is not None:
        if pins is not None:
            refuse_conflicting_pins(target, pins, project.root)
        body = normalise(_compile(project, target, resolver, pins, upgrade), project.root)
    data = with_header(body, header).encode("utf-8")
    lock = parse_lock(data, target.lock)  # refuse, before writing, what installs would refuse
    if pins is not None:
        _check_pins_kept(target, lock, pins, project.root)
    target.lock.parent.mkdir(parents=True, exist_ok=True)  # locks/ for a pyproject's first lock
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


def _compile(project: Project, target: LockTarget, resolver: Resolver, pins: Pins | None, upgrade: bool) -> str:
    """The resolver's lock text, with the scratch files' paths replaced by what the user wrote."""
    root = project.root
    with tempfile.TemporaryDirectory(prefix="relay-lock-") as scratch:
        renames: dict[Path, str] = {}
        if target.is_pyproject:
            source = Path(scratch) / GENERATED_IN
            source.write_text("".join(f"{line}\n" for line in target.declared()), encoding="utf-8")
            renames[source] = target.reference(root)
        else:
            source = target.source
        constraints = None
        if pins is not None:
            constraints = Path(scratch) / PINS_CONSTRAINTS
            constraints.write_text("".join(f"{line}\n" for line in pins.lines), encoding="utf-8")
            renames[constraints] = _relative(pins.path, root)
        request = CompileRequest(
            root=root,
            source=_relative(source, root) if not target.is_pyproject else str(source),
            seed=target.lock.read_text(encoding="utf-8") if target.lock.is_file() else None,
            runtime=project.runtime,
            architecture=target.architecture,
            upgrade=upgrade,
            constraints=str(constraints) if constraints else None,
        )
        try:
            text = resolver.compile(request)
        except LockError as exc:
            if pins is None:
                raise
            raise _unsatisfiable_pins(target, pins, exc, root) from None
        for path, shown in renames.items():
            for spelling in {str(path), str(path.resolve()), _relative(path, root)}:
                text = text.replace(spelling, shown)
        return text


def refuse_conflicting_pins(target: LockTarget, pins: Pins, root: Path) -> None:
    """A requirement whose range excludes the version the app's lock pins: say which, before resolving."""
    from builder.lock.pins import lambda_environment

    environment = lambda_environment(target.runtime, target.architecture)
    clashes = []
    for requirement in _requirements_of(target):
        pinned = pins.version_of(requirement.name)
        if pinned is None or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        if not requirement.specifier.contains(pinned, prereleases=True):
            clashes.append(f"{requirement.name} (requires {requirement.specifier}, pinned {pinned})")
    if clashes:
        raise LockError(
            STEP, f"{target.label}: {target.reference(root)} conflicts with {_relative(pins.path, root)}: {'; '.join(clashes)}",
            hint="Update the app's lock (uv lock / poetry lock) or the requirement, so both agree.",
        )


def _requirements_of(target: LockTarget) -> list:
    """The requirements a target declares itself (a `.in`'s lines and its -r files; a pyproject's list)."""
    from packaging.requirements import InvalidRequirement, Requirement

    if target.is_pyproject:
        return [Requirement(line) for line in target.declared()]
    found = []
    for path in [target.source, *(p for _ref, p in includes(target.source))]:
        for _number, line in logical_lines(path.read_text(encoding="utf-8")):
            if line.startswith("-"):
                continue  # an option or an include, not a requirement
            try:
                found.append(Requirement(line.split(" --")[0]))
            except InvalidRequirement:
                continue  # the resolver reports it, with its own words
    return found


def _unsatisfiable_pins(target: LockTarget, pins: Pins, error: LockError, root: Path) -> LockError:
    """The resolver failed with the app's pins: name the pinned packages its message mentions."""
    from packaging.utils import canonicalize_name

    words = {canonicalize_name(w) for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", error.reason)}
    named = [f"{name}=={version}" for name, version in pins.versions if name in words]
    if not named:  # the tool's message was cut before it named one: the pins of what the target asks for
        direct = {canonicalize_name(r.name) for r in _requirements_of(target)}
        named = [f"{name}=={version}" for name, version in pins.versions if name in direct]
    which = f" (pinned: {', '.join(named)})" if named else ""
    return LockError(
        STEP,
        f"{target.label}: the versions {_relative(pins.path, root)} pins cannot be resolved for "
        f"{target.runtime} on {target.architecture}{which}: {error.reason}",
        hint="A pinned version may have no wheel for Lambda's platform or Python; update the app's lock, "
             "or drop `pins` for this target.",
    )


def _check_pins_kept(target: LockTarget, lock: LockFile, pins: Pins, root: Path) -> None:
    """Every package both locks hold has the app's version (the constraints promise it; this checks it)."""
    differing = [f"{r.name} {r.version} (pinned {pins.version_of(r.name)})" for r in lock.requirements
                 if pins.version_of(r.name) not in (None, r.version)]
    if differing:
        raise LockError(STEP, f"{target.label}: the lock differs from {_relative(pins.path, root)}: {', '.join(differing)}")


def _has_requirements(target: LockTarget) -> bool:
    if target.is_pyproject:
        return bool(target.declared())
    return bool(logical_lines(target.source.read_text(encoding="utf-8")))


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
