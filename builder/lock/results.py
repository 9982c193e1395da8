"""What `relay lock` did: one outcome per lock, and the result for the whole project."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from builder.errors import LockStale
from builder.frozen import to_tuple
from builder.lock.targets import LockTarget


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
            "input": self.target.reference(self.root),
            "pins": self.relative(self.target.pins) if self.target.pins else None,
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

    def raise_for_check(self) -> None:
        """Raise LockStale naming each missing or stale lock (only after `--check`)."""
        if not (self.check and self.problems):
            return
        named = "; ".join(f"{o.relative(o.target.lock)} ({o.status}: {o.reason})" for o in self.problems)
        raise LockStale(f"{len(self.problems)} lock(s) missing or stale: {named}")
