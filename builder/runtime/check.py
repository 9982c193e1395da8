"""Lambda's init, run here: does the handler's module import and its function resolve?

Two ways, chosen by `plan_check` for the bundle's runtime and architecture:

- **imported** (the stronger): the same mount, environment and interpreter as
  `relay invoke`, with the bootstrap in "check" mode: it imports the handler's
  module as Lambda's init does and says what went wrong, if anything. What is
  importable is what Lambda would find: the bundle, its layers, the standard
  library and the runtime's own packages (linked, see `provided.py`), so a
  handler importing boto3 and then a package missing from its lock is caught
  whatever the order. The SDK finds no credentials here: importing a handler
  never calls AWS. A bundle for the other architecture is imported this way
  only under qemu-user with that machine's Python (`interpreter.py`);
- **static** when the handler cannot be imported here (the other
  architecture without emulation, or no interpreter of the runtime's Python):
  what init would import is resolved against the mounted bundle and layers,
  the target's standard library and the SDK (`static.py`).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from builder.frozen import to_tuple
from builder.runtime.child import BOOTSTRAP, ChildRun, ForkServer, Mode, run_child, servable
from builder.runtime.environment import function_identity, lambda_environment
from builder.runtime.interpreter import Interpreter, emulated_python, host_architecture, runtime_python
from builder.runtime.mount import Mount, Trees, Zipped
from builder.runtime.provided import AWS_SDK_MODULES, provided_versions
from builder.runtime.runtimes import lambda_runtime, machine_of
from builder.runtime.static import StaticResult, check_statically, init_imports, top_name

# The modules whose code decides a static verdict (with the bootstrap's, what a remembered verdict depends on).
_STATIC_MODEL = ("check.py", "child.py", "static.py", "initcode.py", "stdlib.py", "distributions.py", "extensions.py",
                 "provided.py", "mount.py")

# Cold imports on a busy CI machine take longer than Lambda's 10 s init limit allows.
INIT_LIMIT_SECONDS = 120.0
_WRITE_LIMIT_SECONDS = 10.0


class Status(enum.StrEnum):
    """The bootstrap's verdicts (`bootstrap.check`), and the two ways a child ends without one."""

    OK = "ok"
    MISSING = "missing"  # a module is not there: `module` names it
    FOREIGN = "foreign"  # a native extension is built for another platform: `note`
    NO_HANDLER = "no-handler"  # the module has no such function
    ERROR = "error"  # init raised: `error`
    AWS_CALL = "aws-call"  # init called AWS, which the check does not let it reach: `note`
    TIMED_OUT = "timed-out"
    CRASHED = "crashed"  # the interpreter died: `error` holds the end of its output


class Method(enum.StrEnum):
    """How a function's init was checked (what the build report says)."""

    IMPORTED = "imported"  # the handler was imported, under `CheckPlan.interpreter`
    STATIC = "static"  # resolved without running it (`static.py`)
    SKIPPED = "skipped"  # not checked


@attrs.frozen
class CheckPlan:
    """How this machine can check a bundle for `runtime` on `architecture`, and why not better."""

    method: Method
    interpreter: Interpreter | None = None
    why: str = ""  # for a static check: what this machine lacks to import the handler

    def key(self) -> str:
        """What a remembered verdict was reached with: a check made another way is made again."""
        if self.interpreter is None:
            return self.method.value
        return json.dumps([self.method.value, str(self.interpreter.path), list(self.interpreter.launcher)])


def plan_check(runtime: str, architecture: str) -> CheckPlan:
    """Import under the runtime's Python when this machine can run the bundle's code; resolve statically when not."""
    version = lambda_runtime(runtime).python
    host, machine = host_architecture(), machine_of(architecture)
    if architecture == host:
        python = runtime_python(runtime)
        if python is not None:
            return CheckPlan(Method.IMPORTED, python)
        return CheckPlan(Method.STATIC, why=f"{runtime} is not installed here")
    emulated = emulated_python(runtime, machine)
    if emulated is not None:
        return CheckPlan(Method.IMPORTED, emulated)
    return CheckPlan(Method.STATIC, why=f"an {architecture} bundle on an {host} host without qemu-{machine} and a "
                     f"Python {version} for {machine}")


@attrs.frozen
class ImportVerdict:
    status: Status
    module: str = ""
    error: str = ""
    note: str = ""


class WarmInterpreters:
    """One `ForkServer` per layer set and Python, started by the first check of those layers.

    The server imports ahead what checks of these layers load from them and the runtime's packages, then
    forks a child per check, which pays for the handler's own modules only. What it imports ahead is, best
    first: the modules a check of the same layers loaded, by this build or an earlier one (`remember`; kept
    in `store` by the Python and the layer set's content-named trees), else what the first check's handler
    imports at init from outside its bundle, resolved statically (`get`'s `guess`, `static.init_imports`).
    The list only decides what is imported ahead: a module in it that fails to import is skipped, and a
    bundle shipping a name in it is checked fresh. A bundle the server may not serve (`ForkServer.serves`),
    an emulated Python, a check with no list (no `guess`), or a server that fails, gets a fresh interpreter;
    the first of those for a layer set runs alone (`Trees.first_alone`) and its list starts the server for
    the next. `close()` stops them all (the build does, when it ends).
    """

    def __init__(self, store: Path | None = None) -> None:
        self._store = store  # where first checks' module lists are kept; None: nowhere
        self._servers: dict[tuple[str, str, str], ForkServer | None] = {}  # None: it failed to start
        self._waiting: dict[tuple[str, str, str], _FirstCheck] = {}  # remembered, no server started yet
        self._known: set[tuple[str, str, str]] = set()  # layer sets whose list a check has said (or `store` had)
        self._starting: dict[tuple[str, str, str], threading.Lock] = {}
        self._folders: list[tempfile.TemporaryDirectory] = []
        self._guard = threading.Lock()

    def get(self, python: Interpreter, mount: Mount, env: dict[str, str], pycache: Path,
            guess: Callable[[], list[str]] | None = None) -> ForkServer | None:
        """The layer set's server, started now from what a check of it loaded (by this build or, in `store`, an
        earlier one), else from `guess` (the modules this check's handler imports from its layers), when it
        could serve `mount`'s bundle (one it may not serve starts none); None: check fresh. `env` and
        `pycache` are this check's, for a server started from a kept list or a guess."""
        key = _server_key(python, mount)
        with self._guard:
            if key in self._servers:
                return self._servers[key]
            if python.launcher:  # emulated: a fork of it is no cheaper (`remember` keeps nothing for it)
                return None
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:  # one thread starts it; the others of this layer set wait for it, then use it
            with self._guard:
                if key in self._servers:
                    return self._servers[key]
                waiting = self._waiting.get(key)
            if waiting is None:
                preload = self._kept(key)
                if preload is not None:
                    with self._guard:
                        self._known.add(key)
                elif guess is not None:
                    preload = guess()
                if preload is None:
                    return None
                with self._guard:
                    waiting = self._waiting.setdefault(key, _FirstCheck(python, mount, preload, env, pycache))
            if not servable(mount.task, waiting.top()):
                return None  # this bundle ships a name it would import: checked fresh, and no server started
            server = self._start(waiting)
            with self._guard:  # remembered until now: a check arriving meanwhile waits above, not fresh
                self._servers[key] = server
                self._waiting.pop(key, None)
            return server

    def remember(self, python: Interpreter, mount: Mount, preload: list[str], env: dict[str, str],
                 pycache: Path) -> None:
        """What a passing check of a layer set loaded from it: kept for later builds (the first said, once);
        a server is started from it if another check comes and none was started yet, and a running server
        imports what it lacks of it (`ForkServer.preload_more`: lazy imports no static list sees)."""
        key = _server_key(python, mount)
        with self._guard:
            if python.launcher:
                return
            first = key not in self._known
            self._known.add(key)
            server = self._servers.get(key)
            if first and key not in self._servers:
                self._waiting.setdefault(key, _FirstCheck(python, mount, preload, env, pycache))
        if first:
            self._keep(key, preload)
        if server is not None:  # what this check loaded that the server had not: imported for the next ones
            imported = set(server.preload)
            more = [name for name in preload if name not in imported]
            if more:
                with contextlib.suppress(OSError):  # not imported ahead: each check imports it, as before
                    server.preload_more(more, limit=INIT_LIMIT_SECONDS)

    def _kept(self, key: tuple[str, str, str]) -> list[str] | None:
        """The module list an earlier build's first check of this layer set loaded, if kept whole."""
        if self._store is None:
            return None
        try:
            doc = json.loads((self._store / f"{_store_name(key)}.json").read_text(encoding="utf-8"))
            preload, checksum = doc["preload"], doc["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(preload, list) or checksum != _list_checksum(key, preload):
            return None
        if not all(isinstance(name, str) and all(part.isidentifier() for part in name.split(".")) for name in preload):
            return None
        return preload

    def _keep(self, key: tuple[str, str, str], preload: list[str]) -> None:
        if self._store is None:
            return
        from builder.fsutil import atomic_write_text

        try:
            self._store.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self._store / f"{_store_name(key)}.json",
                              json.dumps({"key": list(key), "preload": preload, "sha256": _list_checksum(key, preload)}))
        except OSError:
            pass  # a cache that cannot be written costs the next build its head start, nothing else

    def _start(self, first: _FirstCheck) -> ForkServer | None:
        folder = tempfile.TemporaryDirectory(prefix="relay-serve-")
        with self._guard:
            self._folders.append(folder)
        spec = {"path_before": first.mount.path_before_stdlib(first.python.version)[1:],
                "path_after": first.mount.path_after_stdlib(), "preload": list(first.preload)}
        try:
            return ForkServer(first.python.path, Path(folder.name), spec, first.env, pycache=first.pycache,
                              ready_limit=INIT_LIMIT_SECONDS)
        except OSError:
            return None

    def close(self) -> None:
        with self._guard:
            servers, self._servers = [s for s in self._servers.values() if s is not None], {}
            folders, self._folders = self._folders, []
            self._waiting.clear()
            self._known.clear()
        for server in servers:
            server.close()
        for folder in folders:
            folder.cleanup()


@attrs.frozen
class _FirstCheck:
    """What the first check of a layer set ran with and loaded: what its server is started from."""

    python: Interpreter
    mount: Mount
    preload: tuple[str, ...] = attrs.field(converter=to_tuple)
    env: dict[str, str]
    pycache: Path

    def top(self) -> frozenset[str]:
        """The top-level names the server would import."""
        return frozenset(top_name(name) for name in self.preload)


def _server_key(python: Interpreter, mount: Mount) -> tuple[str, str, str]:
    return str(python.path), str(mount.opt), str(mount.runtime)


def _store_name(key: tuple[str, str, str]) -> str:
    return hashlib.sha256("\0".join(key).encode()).hexdigest()


def _list_checksum(key: tuple[str, str, str], preload: list[str]) -> str:
    return hashlib.sha256(json.dumps([list(key), preload]).encode()).hexdigest()


def check_import(
    bundle: Zipped, layers: Sequence[Zipped], *, trees: Trees, python: Interpreter, function: str, handler: str,
    runtime: str, memory: int, environment: dict[str, str], warm: WarmInterpreters | None = None,
    preload: list[str] | None = None,
) -> ImportVerdict:
    """Import `handler` from `bundle` + `layers` under `python` (the runtime's own, or an emulated one).

    The bundle and its layers are read where `trees` keeps them unpacked (each zip once, ever), and the
    bytecode the child compiles from them is kept beside them: a second handler of the same bundle, or
    the same layer under another function, is neither unpacked nor compiled again. With `warm`, checks
    are forked from an interpreter that imported the layers' modules once (`WarmInterpreters`), started
    from `preload` when nothing of these layers was remembered (default: what the handler imports from
    outside its bundle, `static.init_imports`; the build resolves it while the layers are built).
    """
    identity = function_identity(function, handler=handler, runtime=runtime, memory=memory, host_env=os.environ)
    mount = trees.mount(bundle, layers)
    trees.bytecode.link_stdlib(python.path, python.version)
    with tempfile.TemporaryDirectory(prefix="relay-import-") as tmp:
        root = Path(tmp)
        spec = {
            "mode": Mode.CHECK.value,
            "handler": handler,
            "task": str(mount.task),
            "path_before": mount.path_before_stdlib(python.version),
            "path_after": mount.path_after_stdlib(),
            "shown_as": mount.shown_as(),
            "aws_sdk": list(AWS_SDK_MODULES),
        }
        if warm is not None:  # what it loaded from the layers and the runtime's packages: `WarmInterpreters.remember`
            spec["report_from"] = [str(mount.opt), str(mount.runtime)]
        env = lambda_environment(identity, environment, mount, os.environ, reach_aws=False)

        def guess() -> list[str]:
            return preload if preload is not None else handler_imports(mount.task, handler, python)

        def served() -> ChildRun | None:
            server = warm.get(python, mount, env, trees.pycache, guess) if warm is not None else None
            if server is None:
                return None
            try:
                return server.run(root, spec, env, init_limit=INIT_LIMIT_SECONDS, limit=_WRITE_LIMIT_SECONDS)
            except OSError:  # it may not serve this bundle (`ForkServer.serves`), or it died: a fresh interpreter decides
                return None

        child = served()
        if child is None:
            with trees.first_alone(mount):  # the first fresh one of a layer set compiles it for the others
                child = served()
                if child is None:
                    child = run_child(python.path, root, spec, env, init_limit=INIT_LIMIT_SECONDS,
                                      limit=_WRITE_LIMIT_SECONDS, launcher=python.launcher, pycache=trees.pycache)
        if warm is not None and child.outcome is not None and child.outcome.get("status") == "ok":
            warm.remember(python, mount, list(child.outcome.get("loaded", [])), env, trees.pycache)
    if child.timed_out_in is not None:
        return ImportVerdict(Status.TIMED_OUT)
    if child.outcome is None:
        tail = child.logs.strip().splitlines()[-5:]
        return ImportVerdict(Status.CRASHED, error=f"{child.exit_text()}: {' | '.join(tail)}")
    doc = child.outcome
    return ImportVerdict(Status(doc["status"]), module=doc.get("module", ""), error=doc.get("error", ""),
                         note=doc.get("note", ""))


def handler_imports(task: Path, handler: str, python: Interpreter) -> list[str]:
    """What `handler` imports at init from outside the bundle unpacked at `task`, under `python` on this machine
    (`static.init_imports`): what a warm interpreter imports ahead when no check of its layers said yet."""
    return init_imports(task, handler, python=python.version, machine=machine_of(host_architecture()))


def check_static(bundle: Zipped, layers: Sequence[Zipped], *, trees: Trees, handler: str, runtime: str,
                 architecture: str) -> StaticResult:
    """Resolve `handler`'s init in `bundle` + `layers` for `runtime` on `architecture`, running none of it."""
    return check_statically(trees.mount(bundle, layers), handler, python=lambda_runtime(runtime).python,
                            machine=machine_of(architecture))


@functools.cache
def model_fingerprint() -> str:
    """What a remembered verdict depends on besides the bundle: the check's own code and the provided packages."""
    here = Path(__file__).parent
    data = BOOTSTRAP.read_bytes() + b"".join((here / name).read_bytes() for name in _STATIC_MODEL)
    data += json.dumps(provided_versions(), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()
