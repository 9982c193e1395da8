"""One local invocation of a built function, the way Lambda runs it (`relay invoke`).

The function's bundle and layers are mounted (`mount.py`), the runtime's
Python is chosen (`interpreter.py`: an installed one of the runtime's version,
or for the other architecture one run under qemu-user when there is one;
without any, `relay invoke` says what to install), the environment and context are
Lambda's (`environment.py`), and the bootstrap runs the handler once in a
child (`child.py`, `bootstrap.py`). The outcome is an `Invocation`: Lambda's
response or error document, the handler's logs and the REPORT figures.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from builder.config import Project
from builder.dist import FunctionBundle, function_bundle
from builder.errors import InvokeFailed
from builder.frozen import to_tuple
from builder.progress import Reporter, SilentReporter
from builder.runtime.child import ChildRun, Mode, Phase, run_child
from builder.runtime.environment import LATEST, function_identity, lambda_environment
from builder.runtime.interpreter import Interpreter, architecture_note, emulated_python, host_architecture, runtime_python
from builder.runtime.mount import mount_bundles
from builder.runtime.runtimes import lambda_runtime, machine_of

# Lambda gives a function's init phase 10 s before it gives up on it.
INIT_LIMIT_SECONDS = 10.0


@attrs.frozen
class Invocation:
    """The outcome of one local invocation: Lambda's response, logs and REPORT figures."""

    function: str
    version: str
    request_id: str
    result: Any
    error: dict | None
    logs: str
    duration_ms: float
    max_memory_mb: int
    memory_size_mb: int
    timeout_seconds: float
    init_duration_ms: float | None = None
    timed_out: bool = False
    python: str = ""
    notes: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def billed_duration_ms(self) -> int:
        return max(1, math.ceil(self.duration_ms))

    @property
    def response(self) -> Any:
        """What Lambda's Invoke API would return: the result, or the error document."""
        return self.result if self.ok else self.error

    def to_json(self) -> dict:
        return {
            "function": self.function,
            "version": self.version,
            "request_id": self.request_id,
            "result": self.result,
            "error": self.error,
            "logs": self.logs,
            "duration_ms": round(self.duration_ms, 2),
            "billed_duration_ms": self.billed_duration_ms,
            "init_duration_ms": round(self.init_duration_ms, 2) if self.init_duration_ms is not None else None,
            "max_memory_mb": self.max_memory_mb,
            "memory_size_mb": self.memory_size_mb,
            "timeout_seconds": self.timeout_seconds,
            "timed_out": self.timed_out,
            "python": self.python,
            "notes": list(self.notes),
        }

    def failure(self) -> InvokeFailed:
        assert self.error is not None
        if self.timed_out:
            message = f"{self.function}: Task timed out after {self.timeout_seconds:.2f} seconds"
        else:
            message = f"{self.function}: {self.error.get('errorType')}: {self.error.get('errorMessage')}"
        return InvokeFailed(message)

    def raise_for_error(self) -> None:
        if not self.ok:
            raise self.failure()


def invoke_function(
    project: Project,
    name: str,
    *,
    event: Any = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
    bundle: FunctionBundle | None = None,
    host_env: Mapping[str, str] | None = None,
) -> Invocation:
    """Run function `name`'s built bundle (or `bundle`) once with `event` (default `{}`); return the outcome.

    The handler reaches AWS as `host_env` (default: this process's
    environment) says: its credentials, endpoints and region pass through.

    Never raises for what the handler does (it is in the outcome); raises
    NotFound when dist/ holds no build of it, VerificationFailed when dist/ is
    inconsistent.
    """
    reporter = reporter or SilentReporter()
    host_env = os.environ if host_env is None else host_env
    fn = project.function(name)
    bundle = bundle or function_bundle(project, fn)
    runtime = bundle.manifest.runtime
    python = invoke_python(runtime, bundle.manifest.architecture)
    arch_note = "" if python.launcher else architecture_note(bundle.manifest.architecture)
    notes = tuple(filter(None, [python.note, arch_note, f"under qemu: {python.describe()}" if python.launcher else ""]))
    for note in notes:
        reporter.note(f"{fn.name}: {note}")
    limit = float(timeout if timeout is not None else fn.timeout)
    request_id = str(uuid.uuid4())
    identity = function_identity(fn.name, handler=bundle.manifest.handler or fn.handler, runtime=runtime,
                                 memory=fn.memory, host_env=host_env)
    with tempfile.TemporaryDirectory(prefix="relay-invoke-") as tmp:
        root = Path(tmp)
        mount = mount_bundles(bundle.zip_path, bundle.layer_zips, root)
        event_path = root / "event.json"
        event_path.write_text(json.dumps({} if event is None else event), encoding="utf-8")
        spec = {
            "mode": Mode.INVOKE.value,
            "handler": identity.handler,
            "task": str(mount.task),
            "path_before": mount.path_before_stdlib(python.version),
            "path_after": mount.path_after_stdlib(),
            "shown_as": mount.shown_as(),
            "event_path": str(event_path),
            "timeout_ms": int(limit * 1000),
            "context": identity.context_fields(request_id),
        }
        env = lambda_environment(identity, fn.environment, mount, host_env, reach_aws=True)
        child = run_child(python.path, root, spec, env, init_limit=INIT_LIMIT_SECONDS, limit=limit,
                          launcher=python.launcher)
    invocation = _invocation(fn.name, fn.memory, request_id, limit, child, python.path, notes)
    if invocation.max_memory_mb > invocation.memory_size_mb:
        over = (f"used {invocation.max_memory_mb} MB, more than its {invocation.memory_size_mb} MB: "
                "Lambda would have stopped it (Runtime.OutOfMemory)")
        reporter.note(f"{fn.name}: {over}")
        invocation = attrs.evolve(invocation, notes=(*invocation.notes, over))
    return invocation


def invoke_python(runtime: str, architecture: str) -> Interpreter:
    """The Python to run the handler under; InvokeFailed (naming what to install) when there is none here.

    The other architecture's bundle runs under qemu-user when its Python is
    found (`emulated_python`), else under the host's Python of the runtime's
    version, with a note that its native extensions cannot load.
    """
    if architecture != host_architecture():
        emulated = emulated_python(runtime, machine_of(architecture))
        if emulated is not None:
            return emulated
    python = runtime_python(runtime)
    if python is None:
        version = lambda_runtime(runtime).python
        raise InvokeFailed(
            f"cannot run {runtime} here: no Python {version} interpreter was found (python{version} on PATH, "
            "or in pyenv's versions)",
            hint=f"Install Python {version} so that `python{version}` is on PATH (for example "
            f"`pyenv install {version}`, or your system's python{version} package), then invoke again.",
        )
    return python


def _invocation(function: str, memory: int, request_id: str, limit: float, child: ChildRun, python: Path,
                notes: tuple[str, ...]) -> Invocation:
    result, error, duration, init_ms = None, None, child.wall_ms, child.init_ms
    if child.timed_out_in:
        seconds = INIT_LIMIT_SECONDS if child.timed_out_in is Phase.INIT else limit
        error = {"errorType": "Sandbox.Timedout",
                 "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"}
        duration = seconds * 1000
        limit = seconds
    elif child.outcome is None:
        error = {"errorType": "Runtime.ExitError",
                 "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {child.exit_text()}"}
    else:
        duration = child.outcome.get("duration_ms", 0.0)
        if child.outcome.get("phase") == Phase.INIT:
            init_ms = child.wall_ms  # init failed: all the time went into it
        if "error" in child.outcome:
            error = child.outcome["error"]
        else:
            result = json.loads(child.outcome["payload"])
    return Invocation(
        function=function,
        version=LATEST,
        request_id=request_id,
        result=result,
        error=error,
        logs=child.logs,
        duration_ms=duration,
        max_memory_mb=math.ceil(child.max_rss_kb / 1024),
        memory_size_mb=memory,
        timeout_seconds=limit,
        init_duration_ms=init_ms,
        timed_out=child.timed_out_in is not None,
        python=str(python),
        notes=notes,
    )
