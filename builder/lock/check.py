"""`relay lock --check`: whether a lock is missing or stale, from its header alone; nothing is resolved."""

from __future__ import annotations

import attrs

from builder.config import Project
from builder.errors import LockError
from builder.lock.lockfile import LockHeader, parse_header, parse_lock
from builder.lock.results import LockOutcome
from builder.lock.targets import LockTarget


def check_target(project: Project, target: LockTarget) -> LockOutcome:
    """ok, missing or stale, from the lock's header alone: nothing is resolved."""
    base = LockOutcome(target=target, root=project.root, status="ok")
    expected = target.input_sha256()  # first: a pyproject without the named group is a ConfigError, lock or not
    if not target.lock.is_file():
        return attrs.evolve(base, status="missing", reason="no lock file")
    data = target.lock.read_bytes()
    header = parse_header(data.decode("utf-8", errors="replace"))
    reason = staleness(header, expected, project.runtime, target.what_changed(project.root))
    if reason is None:
        try:
            lock = parse_lock(data, target.lock)
        except LockError as exc:
            reason = exc.reason
        else:
            python = header.resolved_under or project.runtime
            return attrs.evolve(base, packages=lock.packages, sha256=lock.sha256, python=python)
    return attrs.evolve(base, status="stale", reason=reason)


def staleness(header: LockHeader, expected_input: str, runtime: str,
              changed: str = "the .in file (or a file it includes) changed") -> str | None:
    """Why a lock with `header` no longer fits its inputs and the runtime, or None when it does."""
    if header.input_sha256 is None:
        return "no relay-lock header (not written by relay lock)"
    if header.input_sha256 != expected_input:
        return changed
    if header.runtime != runtime:
        return f"locked for {header.runtime}, the runtime is {runtime}"
    return None
