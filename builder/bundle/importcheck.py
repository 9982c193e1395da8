"""Import each handler the way Lambda will, before anything ships.

The function zip is unpacked as `/var/task` and its layers as `/opt`, then the
target Python (when installed) imports the handler module in isolation (`-I -S`:
no site-packages of the host can hide a missing dependency). A missing module
fails the build with its name. Modules the Lambda runtime itself provides
(boto3 and its dependencies) are allowed. Native extensions built for another
architecture cannot load on this host: the check says so rather than failing.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import attrs

from builder.bundle.pythons import find_python
from builder.errors import BuildFailed
from builder.fsutil import extract_zip

# Shipped inside the Lambda Python runtimes (the AWS SDK and what it needs).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"})
HOST_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
TIMEOUT_SECONDS = 120

_CHECK = r"""
import importlib, json, os, sys
task, opt, module, attr, provided = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], set(sys.argv[5].split(","))
sys.path[:0] = [task, os.path.join(opt, "python")]
os.chdir(task)

import importlib.machinery
foreign = []

class ForeignExtensionWatch:
    # Notes modules whose only native file is built for another platform; never loads anything.
    def find_spec(self, fullname, path=None, target=None):
        base = fullname.rpartition(".")[2]
        for folder in (path if path is not None else sys.path):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            natives = [n for n in names if n.startswith(base + ".") and n.endswith(".so")]
            loadable = [n for n in natives if any(n == base + s for s in importlib.machinery.EXTENSION_SUFFIXES)]
            if natives and not loadable:
                foreign.append(fullname)
        return None

sys.meta_path.insert(0, ForeignExtensionWatch())

def report(**doc):
    print("RELAY-IMPORT-CHECK " + json.dumps(doc))
    sys.exit(0)

try:
    mod = importlib.import_module(module)
except ModuleNotFoundError as exc:
    missing = exc.name or ""
    if missing.split(".")[0] in provided:
        report(status="ok", note="%s is provided by the Lambda runtime" % missing.split(".")[0])
    if missing in foreign:
        report(status="foreign", note="native extension %s is built for another platform" % missing)
    report(status="missing", module=missing, error=str(exc))
except BaseException as exc:
    if foreign:
        report(status="foreign", note="native extension %s is built for another platform" % foreign[0])
    report(status="error", error="%s: %s" % (type(exc).__name__, exc))
if not callable(getattr(mod, attr, None)):
    report(status="no-handler", error="%s has no function %s" % (module, attr))
report(status="ok")
"""


@attrs.frozen
class ImportCheck:
    status: str  # "ok" | "skipped" | "partial"
    note: str = ""

    def to_json(self) -> dict:
        return {"status": self.status, "note": self.note}


def check_handler(
    *, function: str, handler: str, runtime: str, architecture: str,
    bundle: Path, layers: list[Path], environment: dict[str, str],
) -> ImportCheck:
    version = runtime.removeprefix("python")
    python = find_python(version)
    if python is None:
        return ImportCheck("skipped", f"{runtime} is not installed here, so the handler was not imported")
    module, attr = handler.rsplit(".", 1)
    with tempfile.TemporaryDirectory(prefix="relay-import-") as tmp:
        task, opt = Path(tmp) / "task", Path(tmp) / "opt"
        extract_zip(bundle, task)
        for layer in layers:
            extract_zip(layer, opt)
        doc = _run(python, task, opt, module, attr, _env(function, environment))
    return _judge(doc, function=function, handler=handler, architecture=architecture)


def host_architecture() -> str:
    return HOST_MACHINE.get(os.uname().machine, os.uname().machine)


def _judge(doc: dict, *, function: str, handler: str, architecture: str) -> ImportCheck:
    status = doc.get("status")
    if status == "ok":
        return ImportCheck("ok", doc.get("note", ""))
    if status == "foreign" and architecture != host_architecture():
        return ImportCheck("partial", f"{doc.get('note')} ({architecture} on a {host_architecture()} host)")
    if status == "missing":
        raise BuildFailed(
            "import-check",
            f"{function}: importing {handler} failed: no module named {doc['module']!r}",
            hint=f"Add the package that provides {doc['module']!r} to the function's or a layer's requirements "
            "and run `relay lock`.",
        )
    raise BuildFailed(
        "import-check",
        f"{function}: importing {handler} failed: {doc.get('error') or doc.get('note')}",
        hint="Fix the handler module so it imports cleanly under the target runtime.",
    )


def _run(python: Path, task: Path, opt: Path, module: str, attr: str, env: dict[str, str]) -> dict:
    args = [str(python), "-I", "-S", "-B", "-c", _CHECK, str(task), str(opt), module, attr, ",".join(sorted(RUNTIME_PROVIDED))]
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise BuildFailed("import-check", f"importing {module} took over {TIMEOUT_SECONDS}s") from None
    for line in done.stdout.splitlines():
        if line.startswith("RELAY-IMPORT-CHECK "):
            return json.loads(line.removeprefix("RELAY-IMPORT-CHECK "))
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    raise BuildFailed("import-check", f"importing {module} crashed the interpreter: {' | '.join(tail)}")


def _env(function: str, environment: dict[str, str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(environment)
    return env
