"""Running the bootstrap in a child interpreter, with Lambda's time limits, and collecting what it left.

The child is the function's Python run isolated (`-I -S`: no host
site-packages can hide a dependency missing from the bundle, and not even
the bootstrap's own folder is on its path) on `bootstrap.py`, by path. It
reports on a dedicated pipe ("i": init done, "d": done) and writes its
outcome to a result file, so the handler's stdout/stderr (its logs) never mix
with it. The parent enforces the init limit and the run's limit on that pipe,
kills the whole process group when time is up (or when relay itself is
interrupted), and reads the child's own resource usage with `wait4` (peak
memory).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")

_SIGNAL_NAMES: dict[int, str] = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
                 signal.SIGTERM: "terminated", signal.SIGBUS: "bus error"}


class Mode(enum.StrEnum):
    """What the bootstrap does once the handler is loaded (the names `bootstrap.py` reads)."""

    CHECK = "check"  # only load it: the build's import check
    INVOKE = "invoke"  # call it once: `relay invoke`


class Phase(enum.StrEnum):
    INIT = "init"
    INVOKE = "invoke"


@attrs.frozen
class ChildRun:
    """What one child left: its outcome document (None when it died or ran out of time first), logs, figures."""

    outcome: dict | None
    logs: str
    exit_status: int  # os.waitstatus_to_exitcode: negative for a signal
    max_rss_kb: int
    init_ms: float | None
    wall_ms: float
    timed_out_in: Phase | None

    def exit_text(self) -> str:
        """How the process ended, as Lambda says it ("exit status 3", "signal: killed")."""
        if self.exit_status < 0:
            return f"signal: {_SIGNAL_NAMES.get(-self.exit_status, str(-self.exit_status))}"
        return f"exit status {self.exit_status}"


def run_child(python: Path, root: Path, spec: dict[str, Any], env: dict[str, str], *,
              init_limit: float, limit: float, launcher: tuple[str, ...] = (), pycache: Path | None = None) -> ChildRun:
    """Run the bootstrap under `python` with `spec` (files go in `root`); init gets `init_limit` s, the call `limit` s.

    `launcher` goes before the interpreter: an emulator (`qemu-aarch64 -L root`) for another machine's Python.
    `pycache`: where the child keeps the bytecode it compiles (`-X pycache_prefix`), for code mounted from
    folders whose content never changes under the same path (`mount.Trees`); without it none is written.
    """
    spec_path, result_path, log_path = root / "spec.json", root / "result.json", root / "logs.txt"
    read_fd, write_fd = os.pipe()
    spec_path.write_text(json.dumps({**spec, "ctrl_fd": write_fd, "result_path": str(result_path)}), encoding="utf-8")
    # -B or a pycache prefix: nothing is written into the bundle or relay's packages; -u keeps stdout
    # and stderr in the order the handler wrote them, as in CloudWatch.
    bytecode = ["-X", f"pycache_prefix={pycache}"] if pycache is not None else ["-B"]
    argv = [*launcher, str(python), "-I", "-S", *bytecode, "-u", "-X", "utf8", str(BOOTSTRAP), str(spec_path)]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv, cwd=spec["task"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True,
            )
        finally:
            os.close(write_fd)
    finished = False
    try:
        init_ms, timed_out_in = _await(_Signals(read_fd), started, init_limit, limit)
        finished = timed_out_in is None
    finally:
        os.close(read_fd)
        if not finished:  # out of time, or relay itself was interrupted
            _kill_group(proc.pid)
        status, rusage = _reap(proc)
        # Whatever the handler left running in the background does not outlive the run.
        _kill_group(proc.pid)
    wall_ms = (time.monotonic() - started) * 1000
    outcome = _read_outcome(result_path) if not timed_out_in else None
    logs = log_path.read_text(encoding="utf-8", errors="replace")
    return ChildRun(outcome, logs, status, _rss_kb(rusage.ru_maxrss), init_ms, wall_ms, timed_out_in)


class _Signals:
    """The child's one-byte messages on the control pipe: "i" (init done), "d" (done); "" at EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def next(self, deadline: float) -> str | None:
        """The next message, "" when the child closed the pipe, None when `deadline` passed first."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                return os.read(self.fd, 1).decode("ascii", "replace")


def _await(signals: _Signals, started: float, init_limit: float, limit: float) -> tuple[float | None, Phase | None]:
    """(init duration in ms, the phase that ran out of time) from the child's messages."""
    message = signals.next(started + init_limit)
    if message is None:
        return None, Phase.INIT
    if message != "i":
        return None, None  # done (or died) during init
    init_ms = (time.monotonic() - started) * 1000
    # The handler's time starts once init is done, as on Lambda.
    if signals.next(time.monotonic() + limit) is None:
        return init_ms, Phase.INVOKE
    return init_ms, None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen) -> tuple[int, Any]:
    """Wait for the child with wait4, which gives its own peak memory (RUSAGE_CHILDREN mixes in others)."""
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, rusage


def _rss_kb(ru_maxrss: int) -> int:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss // 1024 if sys.platform == "darwin" else ru_maxrss


def _read_outcome(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
