"""The one seam for running outside programs (pip, pip-compile, uv, Python).

Every subprocess relay starts goes through `run`, so tests and callers see one
shape of result, and a failing tool becomes `BuildFailed(step, reason)` whose
reason carries the end of the tool's stderr: the part that says what went wrong.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from builder.errors import BuildFailed
from builder.frozen import to_tuple

TAIL_LINES = 15


@attrs.frozen
class Completed:
    args: tuple[str, ...] = attrs.field(converter=to_tuple)
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    step: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
    error: type[BuildFailed] = BuildFailed,
    hint: str | None = None,
) -> Completed:
    """Run `args` without a shell and capture its text output.

    `env` adds to (or, with a value of "", blanks) the current environment rather
    than replacing it: tools need PATH, HOME and the user's index settings.
    With `check`, a non-zero exit raises `error(step, reason)` with the stderr tail.
    """
    argv = [os.fspath(a) for a in args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=merged_env(env),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise error(step, f"program not found: {argv[0]}", hint=hint) from None
    except subprocess.TimeoutExpired:
        raise error(step, f"{_show(argv)} did not finish within {timeout:g} s", hint=hint) from None
    done = Completed(args=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    if check and not done.ok:
        raise error(step, failure_reason(done), hint=hint)
    return done


def merged_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


def failure_reason(done: Completed, lines: int = TAIL_LINES) -> str:
    """`<program> exited with N` plus the last lines it wrote (stderr, else stdout)."""
    output = tail(done.stderr, lines) or tail(done.stdout, lines)
    head = f"{_show(done.args)} exited with {done.returncode}"
    return f"{head}:\n{output}" if output else head


def tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _show(argv: Sequence[str]) -> str:
    # The program and its first argument are enough to say which tool failed
    # (e.g. "python -m piptools"); the full command line is long and host-specific.
    name = Path(argv[0]).name
    if len(argv) > 2 and argv[1] == "-m":
        return f"{name} -m {argv[2]}"
    return name
