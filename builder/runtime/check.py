"""Lambda's init, run here: does the handler's module import and its function resolve?

The same mount, environment and interpreter as `relay invoke`, with the
bootstrap in "check" mode: it imports the handler's module as Lambda's init
does and says what went wrong, if anything. What is importable is what
Lambda would find: the bundle, its layers, the standard library and the
runtime's own packages (linked, see `provided.py`), so a handler importing
boto3 and then a package missing from its lock is caught whatever the order.
The SDK finds no credentials here: importing a handler never calls AWS.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import attrs

from builder.runtime.child import BOOTSTRAP, Mode, run_child
from builder.runtime.environment import function_identity, lambda_environment
from builder.runtime.interpreter import runtime_python
from builder.runtime.mount import mount_bundles
from builder.runtime.provided import AWS_SDK_MODULES, provided_versions

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


@attrs.frozen
class ImportVerdict:
    status: Status
    module: str = ""
    error: str = ""
    note: str = ""


def check_import(
    bundle: Path, layers: tuple[Path, ...] | list[Path], *, function: str, handler: str, runtime: str, memory: int,
    environment: dict[str, str],
) -> ImportVerdict | None:
    """Import `handler` from `bundle` + `layers` under `runtime`'s Python; None when that Python is not installed."""
    python = runtime_python(runtime)
    if python is None:
        return None
    identity = function_identity(function, handler=handler, runtime=runtime, memory=memory, host_env=os.environ)
    with tempfile.TemporaryDirectory(prefix="relay-import-") as tmp:
        root = Path(tmp)
        mount = mount_bundles(bundle, layers, root)
        spec = {
            "mode": Mode.CHECK.value,
            "handler": handler,
            "task": str(mount.task),
            "path_before": mount.path_before_stdlib(python.version),
            "path_after": mount.path_after_stdlib(),
            "shown_as": mount.shown_as(),
            "aws_sdk": list(AWS_SDK_MODULES),
        }
        env = lambda_environment(identity, environment, mount, os.environ, reach_aws=False)
        child = run_child(python.path, root, spec, env, init_limit=INIT_LIMIT_SECONDS, limit=_WRITE_LIMIT_SECONDS)
    if child.timed_out_in is not None:
        return ImportVerdict(Status.TIMED_OUT)
    if child.outcome is None:
        tail = child.logs.strip().splitlines()[-5:]
        return ImportVerdict(Status.CRASHED, error=f"{child.exit_text()}: {' | '.join(tail)}")
    doc = child.outcome
    return ImportVerdict(Status(doc["status"]), module=doc.get("module", ""), error=doc.get("error", ""),
                         note=doc.get("note", ""))


@functools.cache
def model_fingerprint() -> str:
    """What a remembered verdict depends on besides the bundle: the bootstrap's code and the provided packages."""
    data = BOOTSTRAP.read_bytes() + json.dumps(provided_versions(), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()
