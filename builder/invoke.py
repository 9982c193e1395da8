"""`relay invoke`: run a built function locally, the way Lambda runs it.

The function zip from dist/ is unpacked as the task root (`/var/task`) and the
layer zips its manifest names (by sha256) under an opt folder (`/opt`), in the
manifest's order, later layers overwriting earlier ones as Lambda does. A small
stand-in for Lambda's Python runtime (`_BOOTSTRAP`) then runs the handler once
in a child process under the target Python when it is installed, isolated from
the host's site-packages (`-I -S`) with `sys.path = [task, opt/python/lib/
pythonX.Y/site-packages, opt/python, stdlib..., runtime]`, where `runtime`
holds only what Lambda's runtime ships (boto3 and its dependencies, borrowed
from relay's own environment). The environment is the function's configured
one plus Lambda's own variables; nothing else of the host leaks in except PATH
and AWS credentials/endpoints, so a handler that calls AWS reaches what the
caller's shell would.

The child reports on a dedicated pipe ("i": init done, "d": done) and writes
its outcome to a result file, so the handler's stdout/stderr (its logs) never
mix with the result. The parent enforces Lambda's init limit and the
function's timeout on that pipe, kills the whole process group when time is
up, and reads the child's own resource usage with `wait4` (peak memory).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from builder.bundle.digest import sha256_file
from builder.bundle.importcheck import RUNTIME_PROVIDED, host_architecture
from builder.bundle.pythons import find_python, running_version
from builder.config import Function, Project
from builder.errors import InvokeFailed, NotFound, UsageError, VerificationFailed
from builder.frozen import to_tuple
from builder.fsutil import extract_zip
from builder.models import Manifest, bundle_name
from builder.progress import Reporter, SilentReporter

LATEST = "$LATEST"
# Lambda gives a function's init phase 10 s before it gives up on it.
INIT_LIMIT_SECONDS = 10.0
DEFAULT_REGION = "us-east-1"
# moto's default account: ARNs look real and match `relay local`'s AWS.
LOCAL_ACCOUNT = "123456789012"
# What a handler may need from the caller's shell to reach AWS (or relay local's moto).
PASSTHROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
_SIGNAL_NAMES = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
                 signal.SIGTERM: "terminated", signal.SIGBUS: "bus error"}

_BOOTSTRAP = r'''
"""relay invoke's stand-in for Lambda's Python runtime: load one handler, call it once."""
import decimal, importlib, json, os, sys, time, traceback

HERE = os.path.abspath(__file__)


class Fault(Exception):
    def __init__(self, kind, message, trace=None):
        super().__init__(message)
        self.kind, self.message, self.trace = kind, message, trace or []


class LambdaContext:
    def __init__(self, spec, deadline):
        self.aws_request_id = spec["request_id"]
        self.function_name = spec["function_name"]
        self.function_version = spec["function_version"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = spec["memory_limit_in_mb"]  # a string, as in Lambda's runtime
        self.log_group_name = spec["log_group_name"]
        self.log_stream_name = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s])" % (
            self.aws_request_id, self.function_name, self.function_version)


def signal_parent(fd, code):
    try:
        os.write(fd, code)
    except OSError:
        pass


def bundle_path(text, spec):
    # Show paths as Lambda does: /var/task/..., /opt/...
    return text.replace(spec["task"], "/var/task").replace(spec["opt"], "/opt")


def load_handler(name):
    try:
        modname, fname = name.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (name, exc))
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, exc))
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, exc), trace)
    handler = getattr(module, fname, None)
    if handler is None:
        raise Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return handler


def error_from(exc_info, spec):
    etype, value, tb = exc_info
    frames = [f for f in traceback.extract_tb(tb) if os.path.abspath(f.filename) != HERE]
    stack = [bundle_path(line, spec) for line in traceback.format_list(frames)]
    return {"errorMessage": str(value), "errorType": etype.__name__,
            "requestId": spec["request_id"], "stackTrace": stack}


def fault_error(fault, spec):
    return {"errorMessage": bundle_path(fault.message, spec), "errorType": fault.kind,
            "requestId": spec["request_id"], "stackTrace": [bundle_path(t, spec) for t in fault.trace]}


def log_error(error):
    # Lambda's runtime writes the error to the function's log as well.
    sys.stderr.write("[ERROR] %s: %s\nTraceback (most recent call last):\n%s\n" % (
        error["errorType"], error["errorMessage"], "".join(error["stackTrace"])))


def decimal_serializer(o):
    if isinstance(o, decimal.Decimal):
        return float(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def run(spec, ctrl):
    try:
        handler = load_handler(spec["handler"])
    except Fault as fault:
        return {"phase": "init", "error": fault_error(fault, spec)}
    except Exception:
        return {"phase": "init", "error": error_from(sys.exc_info(), spec)}
    signal_parent(ctrl, b"i")
    with open(spec["event_path"], encoding="utf-8") as fh:
        event = json.load(fh)
    context = LambdaContext(spec, time.monotonic() + spec["timeout_ms"] / 1000.0)
    started = time.perf_counter()
    try:
        result = handler(event, context)
    except Exception:
        error = error_from(sys.exc_info(), spec)
        return {"phase": "invoke", "error": error, "duration_ms": (time.perf_counter() - started) * 1000}
    duration = (time.perf_counter() - started) * 1000
    try:
        payload = json.dumps(result, default=decimal_serializer, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        error = {"errorMessage": "Unable to marshal response: %s" % exc, "errorType": "Runtime.MarshalError",
                 "requestId": spec["request_id"], "stackTrace": []}
        return {"phase": "invoke", "error": error, "duration_ms": duration}
    return {"phase": "invoke", "payload": payload, "duration_ms": duration}


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    ctrl = spec["ctrl_fd"]
    os.set_inheritable(ctrl, False)
    site = os.path.join(spec["opt"], "python", "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    sys.path[:0] = [spec["task"], site, os.path.join(spec["opt"], "python")]
    sys.path.append(spec["runtime_dir"])
    os.chdir(spec["task"])
    outcome = run(spec, ctrl)
    if outcome.get("error"):
        log_error(outcome["error"])
    with open(spec["result_path"], "w", encoding="utf-8") as fh:
        json.dump(outcome, fh, ensure_ascii=False)
    sys.stdout.flush()
    sys.stderr.flush()
    signal_parent(ctrl, b"d")
    # Lambda freezes the sandbox once the response is sent: leftover threads do not hold it up.
    os._exit(0)


main()
'''


# -- what runs --------------------------------------------------------------------------------


@attrs.frozen
class Bundle:
    """A function's zip in dist/ and the layer zips its manifest names, in order."""

    manifest: Manifest
    zip_path: Path
    layer_zips: tuple[Path, ...] = attrs.field(converter=to_tuple)


@attrs.frozen
class Mount:
    """Where a bundle is unpacked: task (`/var/task`), opt (`/opt`), runtime (`/var/runtime`)."""

    task: Path
    opt: Path
    runtime: Path


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

    def log_text(self) -> str:
        """The invocation's log as CloudWatch shows it: START, the handler's output, END, REPORT."""
        lines = [f"START RequestId: {self.request_id} Version: {self.version}"]
        if self.logs:
            lines.append(self.logs.rstrip("\n"))
        if self.timed_out:
            lines.append(f"{self.request_id} Task timed out after {self.timeout_seconds:.2f} seconds")
        lines += [f"END RequestId: {self.request_id}", self.report_line()]
        return "\n".join(lines)

    def report_line(self) -> str:
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_duration_ms} ms",
            f"Memory Size: {self.memory_size_mb} MB",
            f"Max Memory Used: {self.max_memory_mb} MB",
        ]
        if self.init_duration_ms is not None:
            parts.append(f"Init Duration: {self.init_duration_ms:.2f} ms")
        if self.timed_out:
            parts.append("Status: timeout")
        return "\t".join(parts)

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


# -- the library entry point ------------------------------------------------------------------


def invoke_function(
    project: Project,
    name: str,
    *,
    event: Any = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
    bundle: Bundle | None = None,
) -> Invocation:
    """Run function `name`'s built bundle (or `bundle`) once with `event` (default `{}`); return the outcome.

    Never raises for what the handler does (it is in the outcome); raises
    NotFound when dist/ holds no build of it, VerificationFailed when dist/ is
    inconsistent.
    """
    reporter = reporter or SilentReporter()
    fn = project.function(name)
    bundle = bundle or locate_bundle(project, fn)
    runtime = bundle.manifest.runtime
    python, notes = choose_python(runtime)
    notes += architecture_notes(bundle.manifest.architecture)
    for note in notes:
        reporter.note(f"{fn.name}: {note}")
    limit = float(timeout if timeout is not None else fn.timeout)
    request_id = str(uuid.uuid4())
    region = local_region(os.environ)
    with tempfile.TemporaryDirectory(prefix="relay-invoke-") as tmp:
        root = Path(tmp)
        mount = mount_bundles(bundle.zip_path, bundle.layer_zips, root)
        handler = bundle.manifest.handler or fn.handler
        spec = _child_spec(fn, mount, root, handler, request_id=request_id, region=region, limit=limit, event=event)
        env = lambda_environment(fn, runtime=runtime, handler=handler, mount=mount, region=region,
                                 log_stream=spec["log_stream_name"], host_env=os.environ)
        child = _run_child(python, root, spec, env, limit)
    invocation = _invocation(fn, request_id, limit, child, python, notes)
    if invocation.max_memory_mb > invocation.memory_size_mb:
        over = (f"used {invocation.max_memory_mb} MB, more than its {invocation.memory_size_mb} MB: "
                "Lambda would have stopped it (Runtime.OutOfMemory)")
        reporter.note(f"{fn.name}: {over}")
        invocation = attrs.evolve(invocation, notes=(*invocation.notes, over))
    return invocation


def read_event(source: str | None, stdin: TextIO) -> Any:
    """The event: JSON from the file `source`, from `stdin` when it is "-", else `{}`."""
    if source is None:
        return {}
    where = "stdin" if source == "-" else source
    try:
        text = stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"event file not found: {source}", hint="Pass --event FILE (a JSON file) or --event - for stdin.") from None
    if not text.strip():
        raise UsageError(f"event from {where} is empty", hint="An event is a JSON document, e.g. {}.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"event from {where} is not valid JSON: {exc}", hint="Lambda events are JSON documents.") from None


# -- finding and unpacking the bundle ---------------------------------------------------------


def locate_bundle(project: Project, fn: Function) -> Bundle:
    """The function's zip and manifest in dist/, and its layers' zips, checked against the manifest."""
    dist = project.dist_dir
    shown = os.path.relpath(dist, project.root)
    zip_path, manifest_path = dist / f"{fn.name}.zip", dist / f"{fn.name}.manifest.json"
    if not zip_path.is_file() or not manifest_path.is_file():
        raise NotFound(
            f"{fn.name}: no build in {shown}/ ({fn.name}.zip and its manifest are missing)",
            hint=f"Run `relay build {fn.name}` first: relay invoke runs what the build wrote, it does not build.",
        )
    manifest = Manifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
    _check_digest(zip_path, manifest.sha256, shown)
    layer_zips = []
    for ref in manifest.layers:
        path = dist / f"{bundle_name('layer', ref.name, manifest.architecture)}.zip"
        if not path.is_file():
            raise NotFound(
                f"{fn.name}: layer {ref.name} ({ref.sha256[:12]}) is not in {shown}/",
                hint=f"Run `relay build {fn.name}`: it builds the function with its layers.",
            )
        _check_digest(path, ref.sha256, shown)
        layer_zips.append(path)
    return Bundle(manifest, zip_path, layer_zips)


def fetch_bundle(store: Any, trusted: Any, project: Project, fn: Function, version: str, into: Path,
                 reporter: Reporter | None = None) -> Bundle:
    """Function `fn` and its layers as published in release `version`, verified, written under `into`.

    The release's envelopes, manifests and blobs are verified against the
    trusted keys first (`relay verify --function`), then the bytes are fetched
    and checked against their sha256 once more.
    """
    from builder.registry.catalog import Catalog
    from builder.registry.verify import parse_manifest, verify_release

    verify_release(store, project.name, version, trusted, function=fn.name, reporter=reporter)
    entry = Catalog(store, project.name).read(version)
    if entry is None or entry.release.function(fn.name) is None:
        raise NotFound(f"{project.name}@{version} has no function {fn.name}", hint="`relay versions` lists what exists.")
    release_fn = entry.release.function(fn.name)
    manifest_key = store.layout.key(release_fn.manifest)
    manifest = parse_manifest(manifest_key, store.read(manifest_key).body)
    zip_path = _fetch_blob(store, release_fn.sha256, into / f"{fn.name}.zip")
    layer_zips = []
    for layer_bundle in release_fn.layers:
        layer = entry.release.layer(layer_bundle)
        layer_zips.append(_fetch_blob(store, layer.sha256, into / f"{layer_bundle}.zip"))
    return Bundle(manifest, zip_path, layer_zips)


def _fetch_blob(store: Any, sha256: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(store.read(store.layout.blob(sha256)).body)
    _check_digest(dest, sha256, "the registry")
    return dest


def _check_digest(path: Path, expected: str, shown: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise VerificationFailed(
            f"{shown}/{path.name} has sha256 {actual[:12]}, but the function's manifest says {expected[:12]}",
            hint="dist/ holds bundles from different builds: run `relay build` again.",
        )


def mount_bundles(bundle: Path, layers: tuple[Path, ...] | list[Path], root: Path) -> Mount:
    """Unpack `bundle` as `root/task` and `layers` (in order) into `root/opt`, as Lambda mounts them."""
    mount = Mount(task=root / "task", opt=root / "opt", runtime=root / "runtime")
    extract_zip(bundle, mount.task)
    mount.opt.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        extract_zip(layer, mount.opt)
    link_runtime_packages(mount.runtime)
    return mount


def link_runtime_packages(runtime: Path) -> None:
    """A `/var/runtime` stand-in: links to the packages Lambda's runtime ships, taken from relay's own env."""
    runtime.mkdir(parents=True, exist_ok=True)
    for name in sorted(RUNTIME_PROVIDED):
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            source = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            source = Path(spec.origin)
        else:
            continue
        (runtime / source.name).symlink_to(source, target_is_directory=source.is_dir())


# -- the child's world ------------------------------------------------------------------------


def choose_python(runtime: str) -> tuple[Path, tuple[str, ...]]:
    """The target interpreter when installed, else the running one (with a note saying so)."""
    version = runtime.removeprefix("python")
    found = find_python(version)
    if found is not None:
        return found, ()
    note = f"{runtime} is not installed here: running under Python {running_version()} instead"
    return Path(sys.executable), (note,)


def architecture_notes(architecture: str) -> tuple[str, ...]:
    host = host_architecture()
    if architecture == host:
        return ()
    return (f"built for {architecture}, running on a {host} host: native extensions of the bundle cannot load",)


def local_region(host_env: Mapping[str, str]) -> str:
    return host_env.get("AWS_REGION") or host_env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def lambda_environment(
    fn: Function, *, runtime: str, handler: str, mount: Mount, region: str, log_stream: str,
    host_env: Mapping[str, str],
) -> dict[str, str]:
    """The child's whole environment: passthrough < the function's own < Lambda's reserved variables."""
    env = {
        key: value for key, value in host_env.items()
        if key in PASSTHROUGH or key.startswith("AWS_ENDPOINT_URL_")
    }
    env.update({
        "PATH": os.pathsep.join(filter(None, [host_env.get("PATH", "/usr/local/bin:/usr/bin:/bin"), str(mount.opt / "bin")])),
        "LANG": "en_US.UTF-8",
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [
            host_env.get("LD_LIBRARY_PATH", ""), str(mount.task), str(mount.task / "lib"), str(mount.opt / "lib"),
        ])),
    })
    env.update(fn.environment)
    env.update({
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": str(mount.task),
        "LAMBDA_RUNTIME_DIR": str(mount.runtime),
        "TZ": ":UTC",
    })
    return env


def _child_spec(
    fn: Function, mount: Mount, root: Path, handler: str, *, request_id: str, region: str, limit: float, event: Any,
) -> dict:
    event_path = root / "event.json"
    event_path.write_text(json.dumps({} if event is None else event), encoding="utf-8")
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    return {
        "task": str(mount.task),
        "opt": str(mount.opt),
        "runtime_dir": str(mount.runtime),
        "handler": handler,
        "event_path": str(event_path),
        "result_path": str(root / "result.json"),
        "timeout_ms": int(limit * 1000),
        "request_id": request_id,
        "function_name": fn.name,
        "function_version": LATEST,
        "invoked_function_arn": f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{fn.name}",
        "memory_limit_in_mb": str(fn.memory),
        "log_group_name": f"/aws/lambda/{fn.name}",
        "log_stream_name": f"{today}/[{LATEST}]{uuid.uuid4().hex}",
    }


# -- running the child ------------------------------------------------------------------------


@attrs.frozen
class _Child:
    outcome: dict | None  # what the bootstrap wrote; None when it died first
    logs: str
    exit_status: int  # os.waitstatus_to_exitcode: negative for a signal
    max_rss_kb: int
    init_ms: float | None
    wall_ms: float
    timed_out_in: str | None  # "init" | "invoke" | None


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


def _run_child(python: Path, root: Path, spec: dict, env: dict[str, str], limit: float) -> _Child:
    bootstrap, spec_path, log_path = root / "bootstrap.py", root / "spec.json", root / "logs.txt"
    bootstrap.write_text(_BOOTSTRAP, encoding="utf-8")
    read_fd, write_fd = os.pipe()
    spec_path.write_text(json.dumps({**spec, "ctrl_fd": write_fd}), encoding="utf-8")
    # -I -S: no host site-packages can hide a dependency missing from the bundle; -u keeps
    # stdout and stderr in the order the handler wrote them, as in CloudWatch.
    argv = [str(python), "-I", "-S", "-B", "-u", "-X", "utf8", str(bootstrap), str(spec_path)]
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
        init_ms, timed_out_in = _await(_Signals(read_fd), started, limit)
        finished = timed_out_in is None
    finally:
        os.close(read_fd)
        if not finished:  # out of time, or relay itself was interrupted
            _kill_group(proc.pid)
        status, rusage = _reap(proc)
        # Whatever the handler left running in the background does not outlive the invocation.
        _kill_group(proc.pid)
    wall_ms = (time.monotonic() - started) * 1000
    outcome = _read_outcome(root / "result.json") if not timed_out_in else None
    logs = log_path.read_text(encoding="utf-8", errors="replace")
    return _Child(outcome, logs, status, _rss_kb(rusage.ru_maxrss), init_ms, wall_ms, timed_out_in)


def _await(signals: _Signals, started: float, limit: float) -> tuple[float | None, str | None]:
    """(init duration in ms, the phase that ran out of time) from the child's messages."""
    message = signals.next(started + INIT_LIMIT_SECONDS)
    if message is None:
        return None, "init"
    if message != "i":
        return None, None  # done (or died) during init
    init_ms = (time.monotonic() - started) * 1000
    # The handler's time starts once init is done, as on Lambda.
    if signals.next(time.monotonic() + limit) is None:
        return init_ms, "invoke"
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


def _invocation(fn: Function, request_id: str, limit: float, child: _Child, python: Path, notes: tuple[str, ...]) -> Invocation:
    result, error, duration, init_ms = None, None, child.wall_ms, child.init_ms
    if child.timed_out_in:
        seconds = INIT_LIMIT_SECONDS if child.timed_out_in == "init" else limit
        error = {"errorType": "Sandbox.Timedout",
                 "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"}
        duration = seconds * 1000
        limit = seconds
    elif child.outcome is None:
        error = {"errorType": "Runtime.ExitError",
                 "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {_exit_text(child.exit_status)}"}
    else:
        duration = child.outcome.get("duration_ms", 0.0)
        if child.outcome.get("phase") == "init":
            init_ms = child.wall_ms  # init failed: all the time went into it
        if "error" in child.outcome:
            error = child.outcome["error"]
        else:
            result = json.loads(child.outcome["payload"])
    return Invocation(
        function=fn.name,
        version=LATEST,
        request_id=request_id,
        result=result,
        error=error,
        logs=child.logs,
        duration_ms=duration,
        max_memory_mb=math.ceil(child.max_rss_kb / 1024),
        memory_size_mb=fn.memory,
        timeout_seconds=limit,
        init_duration_ms=init_ms,
        timed_out=child.timed_out_in is not None,
        python=str(python),
        notes=notes,
    )


def _exit_text(status: int) -> str:
    if status < 0:
        return f"signal: {_SIGNAL_NAMES.get(-status, str(-status))}"
    return f"exit status {status}"
