"""relay's stand-in for Lambda's Python runtime: the code that runs inside the child interpreter.

`builder/runtime/child.py` runs this file by path, `python -I -S -B -u
bootstrap.py SPEC`, so the child sees no site-packages: it imports the
standard library only, never the `builder` package. Everything it needs to
know comes from the spec (a JSON file the parent wrote): the sys.path entries
that go before and after the standard library (task root and layers; the
runtime's own packages), where the bundle is mounted, the handler, the mode,
and for an invocation the event file, the timeout and the context's fields.

Two modes share Lambda's init (import the handler's module, resolve its
function):

- "check" (the build's import check) reports whether init works: a module
  that is missing, a native extension built for another platform, a missing
  handler function, or any other error;
- "invoke" (`relay invoke`) then calls the handler once with the event and a
  context, and reports its result or Lambda's error document.

A third mode, "serve", keeps one interpreter with the layers' modules
imported and forks a fresh child per handler to check (see `serve`).

The child talks to the parent over a pipe (b"i": init done, b"d": done) and
writes its outcome to a result file, so the handler's stdout and stderr (its
logs) never mix with the outcome.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import importlib.machinery
import json
import os
import sys
import time
import traceback
from typing import Any

HERE = os.path.abspath(__file__)

CHECK = "check"
INVOKE = "invoke"
SERVE = "serve"


class Fault(Exception):
    """An init failure the runtime itself names (Lambda's `Runtime.*` error types)."""

    def __init__(self, kind: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.trace = kind, message, trace or []


class LambdaContext:
    """The handler's second argument, with the attributes and method Lambda's context has."""

    def __init__(self, fields: dict, deadline: float) -> None:
        self.aws_request_id = fields["request_id"]
        self.function_name = fields["function_name"]
        self.function_version = fields["function_version"]
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]  # a string, as in Lambda's runtime
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
                f"function_version={self.function_version}])")


class ForeignExtensionWatch:
    """A finder that notes modules whose only native file is built for another platform; it loads nothing."""

    def __init__(self) -> None:
        self.foreign: list[str] = []

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        base = fullname.rpartition(".")[2]
        for folder in path if path is not None else sys.path:
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            natives = [n for n in names if n.startswith(base + ".") and n.endswith(".so")]
            loadable = [n for n in natives if any(n == base + s for s in importlib.machinery.EXTENSION_SUFFIXES)]
            if natives and not loadable:
                self.foreign.append(fullname)
        return None


# -- init: the handler's module and function ---------------------------------------------------


def split_handler(name: str) -> tuple[str, str]:
    """("pkg.module", "func") of the handler "pkg.module.func" (Lambda also accepts "pkg/module.func")."""
    modname, sep, fname = name.rpartition(".")
    if not sep or not modname or not fname:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{name}': not enough values to unpack")
    return modname.replace("/", "."), fname


def load_handler(name: str) -> Any:
    """The handler function, or a Fault named as Lambda's runtime names it (other errors propagate)."""
    modname, fname = split_handler(name)
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}") from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace) from exc
    handler = getattr(module, fname, None)
    if handler is None:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'")
    return handler


# -- mode "check" ------------------------------------------------------------------------------


def check(spec: dict) -> dict:
    """The import check's verdict on the handler: {"status": ..., and "module", "error" or "note"}."""
    watch = ForeignExtensionWatch()
    sys.meta_path.insert(0, watch)
    try:
        handler = load_handler(spec["handler"])
    except Fault as fault:
        return judge_fault(fault, watch.foreign, spec)
    except BaseException as exc:  # init may raise anything, SystemExit included
        return judge_error(exc, watch.foreign, spec)
    if not callable(handler):
        modname, fname = split_handler(spec["handler"])
        return {"status": "no-handler", "error": f"{modname} has no function {fname}"}
    return {"status": "ok"}


def judge_fault(fault: Fault, foreign: list[str], spec: dict) -> dict:
    cause = fault.__cause__
    if isinstance(cause, ModuleNotFoundError):
        missing = cause.name or ""
        if missing in foreign:
            return foreign_verdict(missing)
        return {"status": "missing", "module": missing, "error": str(cause)}
    if fault.kind == "Runtime.HandlerNotFound":
        modname, fname = split_handler(spec["handler"])
        return {"status": "no-handler", "error": f"{modname} has no function {fname}"}
    if foreign:
        return foreign_verdict(foreign[0])
    if cause is None:
        return {"status": "error", "error": fault.message}
    return {"status": "error", "error": bundle_path(f"{type(cause).__name__}: {cause}", spec)}


def judge_error(exc: BaseException, foreign: list[str], spec: dict) -> dict:
    if foreign:
        return foreign_verdict(foreign[0])
    text = bundle_path(f"{type(exc).__name__}: {exc}", spec)
    package = type(exc).__module__.partition(".")[0]
    if package in spec.get("aws_sdk", ()):
        # Init called AWS, and the check gives the SDK no credentials: what init does after that call is unknown.
        return {"status": "aws-call", "note": f"init called AWS and got {text}"}
    return {"status": "error", "error": text}


def foreign_verdict(module: str) -> dict:
    return {"status": "foreign", "note": f"native extension {module} is built for another platform"}


# -- mode "invoke" -----------------------------------------------------------------------------


def invoke(spec: dict, ctrl: int) -> dict:
    """Init, then one call of the handler: {"phase": "init"|"invoke", "payload" or "error", "duration_ms"}."""
    try:
        handler = load_handler(spec["handler"])
    except Fault as fault:
        return {"phase": "init", "error": fault_error(fault, spec)}
    except Exception:
        return {"phase": "init", "error": error_from(sys.exc_info(), spec)}
    signal_parent(ctrl, b"i")
    with open(spec["event_path"], encoding="utf-8") as fh:
        event = json.load(fh)
    context = LambdaContext(spec["context"], time.monotonic() + spec["timeout_ms"] / 1000.0)
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
        error = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
                 "requestId": spec["context"]["request_id"], "stackTrace": []}
        return {"phase": "invoke", "error": error, "duration_ms": duration}
    return {"phase": "invoke", "payload": payload, "duration_ms": duration}


def error_from(exc_info: Any, spec: dict) -> dict:
    """Lambda's error document for an exception the handler (or its module) raised; no runtime frames."""
    etype, value, tb = exc_info
    frames = [f for f in traceback.extract_tb(tb) if os.path.abspath(f.filename) != HERE]
    stack = [bundle_path(line, spec) for line in traceback.format_list(frames)]
    return {"errorMessage": str(value), "errorType": etype.__name__,
            "requestId": spec["context"]["request_id"], "stackTrace": stack}


def fault_error(fault: Fault, spec: dict) -> dict:
    return {"errorMessage": bundle_path(fault.message, spec), "errorType": fault.kind,
            "requestId": spec["context"]["request_id"], "stackTrace": [bundle_path(t, spec) for t in fault.trace]}


def log_error(error: dict) -> None:
    # Lambda's runtime writes the error to the function's log as well.
    stack = "".join(error["stackTrace"])
    sys.stderr.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\nTraceback (most recent call last):\n{stack}\n")


def decimal_serializer(o: Any) -> float:
    if isinstance(o, decimal.Decimal):
        return float(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# -- both --------------------------------------------------------------------------------------


def bundle_path(text: str, spec: dict) -> str:
    """`text` with the mount's folders shown as Lambda's (/var/task, /opt, /var/runtime)."""
    for local, shown in spec["shown_as"].items():
        text = text.replace(local, shown)
    return text


def signal_parent(fd: int, code: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, code)


def enter(spec: dict) -> None:
    """The process as Lambda sets it up: sys.path around the standard library, cwd the task root."""
    sys.path[:0] = spec["path_before"]
    sys.path.extend(spec["path_after"])
    os.chdir(spec["task"])


def loaded_from(folders: list[str]) -> list[str]:
    """The modules imported so far from `folders` (the layers, the runtime's packages), in the order they were."""
    prefixes = tuple(os.path.join(folder, "") for folder in folders)
    return [name for name, module in list(sys.modules.items())
            if str(getattr(module, "__file__", None) or "").startswith(prefixes)]


def finish(spec: dict, ctrl: int, outcome: dict) -> None:
    with open(spec["result_path"], "w", encoding="utf-8") as fh:
        json.dump(outcome, fh, ensure_ascii=False)
    sys.stdout.flush()
    sys.stderr.flush()
    signal_parent(ctrl, b"d")
    # Lambda freezes the sandbox once the response is sent: leftover threads do not hold it up.
    os._exit(0)


# -- mode "serve": one warm interpreter per layer set, a fresh fork per handler -------------------


def serve(spec: dict) -> None:
    """Import `preload` (modules of the layers and the runtime, names taken from them), then fork one child
    per check asked for.

    The parent's sys.path is the mount's without the task root; each child adds its own task root in
    front, takes its function's environment and runs "check" as a fresh interpreter would, with the
    preloaded modules already in sys.modules (the parent refuses nothing: which bundles it may serve
    is decided by relay, `child.ForkServer.serves`). Requests arrive on a UNIX socket, one connection
    per check; the child reports on that connection as on the control pipe, after its pid. A request
    {"preload": [...]} imports more here first (`child.ForkServer.preload_more`), for the checks after it.
    """
    import signal
    import socket

    sys.path[:0] = spec["path_before"]
    sys.path.extend(spec["path_after"])
    preload(spec["preload"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(spec["socket"])
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; relay reads their verdicts
    sys.stdout.write(top_names() + "\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # relay reads that one line: what modules imported later print goes to the server's log
    import select

    while True:
        # relay holds the other end of stdin: when it goes away (done, or killed), so does the server.
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready:
            os._exit(0)
        conn, _ = listener.accept()
        with conn.makefile("r", encoding="utf-8") as reader:
            request = json.loads(reader.readline())
        if "preload" in request:  # more of the layers' modules, before the next checks: said to be done with `top`
            preload(request["preload"])
            with contextlib.suppress(OSError):
                conn.sendall(top_names().encode() + b"\n")
            conn.close()
            continue
        if os.fork() == 0:
            try:
                listener.close()
                serve_one(request, conn.detach())
            finally:
                os._exit(70)  # serve_one ends the process itself; this child never returns to the loop
        conn.close()


def preload(names: list[str]) -> None:
    """Import each of `names` in this process, skipping what fails; "pkg.mod:name" is `from pkg.mod import name`
    (`static.FROM_IMPORT`)."""
    for name in names:
        module, _, attribute = name.partition(":")
        with contextlib.suppress(BaseException):
            if attribute:
                __import__(module, fromlist=[attribute])  # what the statement runs: the name, else the submodule
            else:
                importlib.import_module(name)


def top_names() -> str:
    """The top-level names imported in this process, as the server reports them: {"top": [...]}."""
    return json.dumps({"top": sorted({name.partition(".")[0] for name in sys.modules})})


def serve_one(request: dict, ctrl: int) -> None:
    """In the forked child: this check's process (own session, logs, environment, task root), then "check"."""
    import signal

    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # as a fresh check's: not the server's pipe from relay
    os.close(devnull)
    os.write(ctrl, b"%010d" % os.getpid())
    log = os.open(request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    spec = request["spec"]
    sys.path.insert(0, spec["task"])
    os.chdir(spec["task"])
    outcome = check(spec)
    if spec.get("report_from"):
        outcome["loaded"] = loaded_from(spec["report_from"])
    signal_parent(ctrl, b"i")
    finish(spec, ctrl, outcome)


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    if spec["mode"] == SERVE:
        serve(spec)
        return
    ctrl = spec["ctrl_fd"]
    os.set_inheritable(ctrl, False)
    enter(spec)
    if spec["mode"] == CHECK:
        outcome = check(spec)
        if spec.get("report_from"):
            outcome["loaded"] = loaded_from(spec["report_from"])
        signal_parent(ctrl, b"i")
    else:
        outcome = invoke(spec, ctrl)
        if outcome.get("error"):
            log_error(outcome["error"])
    finish(spec, ctrl, outcome)


if __name__ == "__main__":
    main(sys.argv)
