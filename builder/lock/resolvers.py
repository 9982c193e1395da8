"""The tools that resolve a `.in` for the Lambda target: pip-tools and uv, behind one protocol.

pip-compile evaluates markers under the Python it runs on, so it runs under
the runtime's Python (from relay's tool venv for it). uv resolves for
`--python-version` and `--python-platform` whatever interpreter runs it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Protocol

import attrs

from builder.bundle import pythons
from builder.bundle.subproc import run
from builder.errors import ConfigError, LockError
from builder.progress import Reporter
from builder.runtime.runtimes import lambda_runtime, machine_of

COMPILE_COMMAND = "relay lock"
RESOLVERS = ("auto", "pip-tools", "uv")
STEP = "lock"
# The manylinux levels uv's --python-platform names: a runtime takes
# the newest its glibc can load, e.g. 2.17 for python3.11 on Amazon Linux 2 (glibc 2.26).
_UV_GLIBC_LEVELS = ((2, 17), (2, 28), (2, 31), (2, 32), (2, 33), (2, 34), (2, 35), (2, 36), (2, 37), (2, 38),
                    (2, 39), (2, 40))
_HINT = "Check the requirement names and version ranges in the .in file."


@attrs.frozen
class CompileRequest:
    root: Path  # the tools run here, so paths they print are relative to it
    source: str  # the .in, relative to root (posix)
    seed: str | None  # the current lock: its pins are kept unless upgrading
    runtime: str
    architecture: str
    upgrade: bool
    constraints: str | None = None  # a constraints file (the app's pins), passed with -c

    @property
    def constraint_options(self) -> list[str]:
        return ["--constraint", self.constraints] if self.constraints else []


class Resolver(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def python(self) -> str:
        """`python3.12`: what markers are evaluated for."""

    @property
    def notes(self) -> tuple[str, ...]: ...

    def compile(self, request: CompileRequest) -> str:
        """The tool's lock text for `request`."""


def create_resolver(choice: str, runtime: str, reporter: Reporter) -> Resolver:
    """`auto` is uv when it is installed, else pip-tools."""
    if choice not in RESOLVERS:
        raise ConfigError(f"unknown resolver {choice!r}", hint=f"Use one of: {', '.join(RESOLVERS)}.")
    uv = find_uv()
    if choice == "uv" and uv is None:
        raise LockError(STEP, "--resolver uv: uv is not installed", hint="pip install uv (or use --resolver pip-tools).")
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
        version = lambda_runtime(runtime).python
        if version == pythons.running_version():
            return cls(interpreter=Path(sys.executable), python=runtime)
        found = pythons.find_python(version)
        if found is None:
            running = f"python{pythons.running_version()}"
            note = (f"{runtime} is not installed here: locks were resolved under {running}, so markers "
                    f"such as python_version were evaluated for {running} (and wheels built only for {runtime} "
                    f"cannot be chosen); install {runtime} and rerun, or lock with `--resolver uv`, which resolves "
                    f"for {runtime} without it")
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
                 *request.constraint_options,
                 "--output-file", output, request.source],
                step=f"{STEP} {request.source}",
                cwd=request.root,
                env={"CUSTOM_COMPILE_COMMAND": COMPILE_COMMAND},
                error=LockError,
                hint=_HINT,
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
        found = pythons.find_python(lambda_runtime(runtime).python)
        return cls(uv=uv, interpreter=found or Path(sys.executable), python=runtime)

    def compile(self, request: CompileRequest) -> str:
        with tempfile.TemporaryDirectory(prefix="relay-lock-") as scratch:
            output = Path(scratch) / "requirements.txt"
            if request.seed is not None:
                output.write_text(request.seed, encoding="utf-8")
            run(
                [self.uv, "pip", "compile", "--generate-hashes", "--quiet",
                 "--python-version", lambda_runtime(request.runtime).python,
                 "--python-platform", uv_platform(request.runtime, request.architecture),
                 "--python", self.interpreter, "--no-python-downloads",
                 "--custom-compile-command", COMPILE_COMMAND,
                 *(["--upgrade"] if request.upgrade else []),
                 *(["--constraints", request.constraints] if request.constraints else []),
                 "--output-file", output, request.source],
                step=f"{STEP} {request.source}",
                cwd=request.root,
                error=LockError,
                hint=_HINT,
            )
            return output.read_text(encoding="utf-8")


def uv_platform(runtime: str, architecture: str) -> str:
    """`x86_64-manylinux_2_34` for python3.12 on x86_64: what Lambda's Linux accepts."""
    glibc = lambda_runtime(runtime).glibc
    major, minor = max(level for level in _UV_GLIBC_LEVELS if level <= glibc)
    return f"{machine_of(architecture)}-manylinux_{major}_{minor}"
