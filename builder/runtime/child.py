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
import threading
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
    SERVE = "serve"  # import the layers' modules, then fork a "check" child per request (`ForkServer`)


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


class ForkServer:
    """A warm interpreter for one layer set (bootstrap's "serve" mode): a fresh fork of it per check.

    It has imported modules of the layers and the runtime that checks of them load (`preload`, what
    `check.WarmInterpreters` starts it with), so a check run by it costs the handler's own modules only.
    It may serve a bundle only when nothing in the bundle could have changed what those imports found
    (`serves`).
    """

    def __init__(self, python: Path, root: Path, spec: dict[str, Any], env: dict[str, str], *,
                 pycache: Path | None, ready_limit: float) -> None:
        self.socket_path = root / "serve.sock"
        spec_path = root / "serve.json"
        spec_path.write_text(json.dumps({**spec, "mode": Mode.SERVE.value, "socket": str(self.socket_path)}),
                             encoding="utf-8")
        bytecode = ["-X", f"pycache_prefix={pycache}"] if pycache is not None else ["-B"]
        argv = [str(python), "-I", "-S", *bytecode, "-u", "-X", "utf8", str(BOOTSTRAP), str(spec_path)]
        self._log = open(root / "serve.log", "wb")  # noqa: SIM115 (closed in close())
        # Its stdin is a pipe relay never writes to: at relay's end, EOF tells the server to end too.
        self.proc = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        self.preload: tuple[str, ...] = tuple(spec["preload"])
        self.top: frozenset[str] = frozenset()
        # A check's request and a request to import more are sent one at a time: the server takes them in
        # that order, so a check decided on `top` is forked before the server imports anything more.
        self._sending = threading.Lock()
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], ready_limit)
        line = self.proc.stdout.readline() if ready else b""
        try:
            self.top = _top(line)
        except (ValueError, KeyError, TypeError):
            self.close()
            raise OSError(f"the check's warm interpreter did not start: {line[-200:]!r}") from None

    def serves(self, task: Path) -> bool:
        """Whether a check of the bundle at `task` sees the same as in a fresh interpreter.

        Not when the bundle ships a top-level name the server has imported (the bundle's would win),
        or native code (its libraries would need the child's own LD_LIBRARY_PATH from the start).
        """
        return servable(task, self.top) and self.proc.poll() is None

    def preload_more(self, names: list[str], *, limit: float) -> None:
        """Import `names` (modules of the layers and the runtime) in the server too, for the checks to come.

        What a passing check loaded that the server had not (lazy imports inside the libraries, which no
        static list sees): each later fork would import it again. `top` grows with it; a check decided
        before is forked before (`run`). OSError when the server does not answer within `limit` s.
        """
        import socket

        with self._sending, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(self.socket_path))
            conn.sendall(json.dumps({"preload": names}).encode() + b"\n")
            conn.settimeout(limit)
            with conn.makefile("rb") as reader:
                line = reader.readline()
            try:
                self.top = _top(line)
            except (ValueError, KeyError, TypeError):
                raise OSError(f"the check's warm interpreter did not import more: {line[-200:]!r}") from None
            self.preload = (*self.preload, *(name for name in names if name not in self.preload))


    def run(self, root: Path, spec: dict[str, Any], env: dict[str, str], *, init_limit: float,
            limit: float) -> ChildRun:
        """Like `run_child`, in a child forked from the server (its figures: wall time only); NotServed when
        the server may not check this bundle (`serves`), decided when the request is sent."""
        import socket

        result_path, log_path = root / "result.json", root / "logs.txt"
        request = {"spec": {**spec, "result_path": str(result_path)}, "env": env, "log_path": str(log_path)}
        started = time.monotonic()
        pid, finished = 0, False
        init_ms: float | None = None
        timed_out_in: Phase | None = None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            with self._sending:  # what it has imported by now is what the child starts with
                if not self.serves(Path(spec["task"])):
                    raise NotServed(f"the warm interpreter may not check the bundle at {spec['task']}")
                conn.connect(str(self.socket_path))
                conn.sendall(json.dumps(request).encode() + b"\n")
            try:
                pid = _read_pid(conn, started + init_limit)
                init_ms, timed_out_in = _await(_Signals(conn.fileno()), started, init_limit, limit)
                finished = timed_out_in is None
            finally:
                if pid:  # out of time, interrupted, or done: nothing the handler started outlives the check
                    _kill_group(pid)
        wall_ms = (time.monotonic() - started) * 1000
        outcome = _read_outcome(result_path) if finished else None
        logs = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        status = 0 if outcome is not None else (1 if finished else -signal.SIGKILL)
        return ChildRun(outcome, logs, status, 0, init_ms, wall_ms, timed_out_in)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        _kill_group(self.proc.pid)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class NotServed(OSError):
    """The server may not check this bundle (`ForkServer.serves`): a fresh interpreter does."""


def _top(line: bytes) -> frozenset[str]:
    """The top-level names a server reports having imported ({"top": [...]})."""
    return frozenset(json.loads(line)["top"])


def _read_pid(conn: Any, deadline: float) -> int:
    """The forked child's pid: the first ten bytes it writes on its connection."""
    data = b""
    while len(data) < 10:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the check's warm interpreter did not fork in time")
        ready, _, _ = select.select([conn], [], [], remaining)
        if ready:
            chunk = conn.recv(10 - len(data))
            if not chunk:
                raise OSError("the check's warm interpreter closed the connection")
            data += chunk
    return int(data)


def servable(task: Path, top: frozenset[str]) -> bool:
    """Whether a server that imported the top-level names `top` may check the bundle at `task` (`ForkServer.serves`)."""
    for folder, dirs, files in os.walk(task):
        if any(name.endswith(".so") or ".so." in name for name in files):
            return False
        if folder == str(task):
            names = {name.partition(".")[0] for name in [*dirs, *files]}
            if names & top or "lib" in dirs:
                return False
    return True
