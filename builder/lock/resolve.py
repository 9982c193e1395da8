"""Locking: each target's `.in` resolved for the Lambda target and written as a hashed lock.

The tool's output is made host-independent (no absolute paths, no index
options) and gets relay's header, so the same project locks to the same bytes
in any folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from builder.config import Project
from builder.errors import LockError
from builder.lock.check import check_target
from builder.lock.lockfile import LockHeader, input_sha256, logical_lines, parse_lock, with_header
from builder.lock.resolvers import STEP, CompileRequest, Resolver, create_resolver
from builder.lock.results import LockOutcome, LockResult
from builder.lock.targets import LockTarget, lock_targets, refuse_shared_inputs
from builder.progress import Reporter, SilentReporter

MAX_PARALLEL = 4
TOOL_BANNER = "# Resolved by `relay lock` for the Lambda runtime; edit requirements.in, not this file."
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


def lock_target(project: Project, target: LockTarget, resolver: Resolver | None, *,
                upgrade: bool = False) -> LockOutcome:
    """Resolve one target and write its lock when the bytes changed.

    `resolver` may be None only for an `.in` without requirements.
    """
    source_text = target.source.read_text(encoding="utf-8")
    if not _has_requirements(source_text):
        resolver = None  # only comments: nothing to resolve, and no tool needed
    elif resolver is None:
        raise LockError(STEP, f"{target.label}: no resolver given for {target.source.name}")
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
