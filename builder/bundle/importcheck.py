"""The build's import check: import each handler the way Lambda will, before anything ships.

The import itself is Lambda's init as `builder/runtime` models it (the same
mount, environment and interpreter as `relay invoke`; see
`builder/runtime/check.py`). This module turns its verdict into the build's
terms: a missing module fails the build naming it; a native extension built
for another architecture than this host's makes the check "partial" rather
than failing; no installed target Python makes it "skipped".
"""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.errors import BuildFailed
from builder.runtime.check import INIT_LIMIT_SECONDS, ImportVerdict, Status, check_import, model_fingerprint
from builder.runtime.interpreter import host_architecture

__all__ = ["ImportCheck", "check_handler", "model_fingerprint"]


@attrs.frozen
class ImportCheck:
    status: str  # "ok" | "skipped" | "partial"
    note: str = ""

    def to_json(self) -> dict:
        return {"status": self.status, "note": self.note}


def check_handler(
    *, function: str, handler: str, runtime: str, architecture: str, memory: int,
    bundle: Path, layers: list[Path], environment: dict[str, str],
) -> ImportCheck:
    verdict = check_import(bundle, layers, function=function, handler=handler, runtime=runtime, memory=memory,
                           environment=environment)
    if verdict is None:
        return ImportCheck("skipped", f"{runtime} is not installed here, so the handler was not imported")
    return _judge(verdict, function=function, handler=handler, architecture=architecture)


def _judge(verdict: ImportVerdict, *, function: str, handler: str, architecture: str) -> ImportCheck:
    host = host_architecture()
    if verdict.status is Status.OK:
        return ImportCheck("ok", verdict.note)
    if verdict.status is Status.FOREIGN and architecture != host:
        return ImportCheck("partial", f"{verdict.note} ({architecture} on a {host} host)")
    if verdict.status is Status.AWS_CALL:
        return ImportCheck("partial", f"{verdict.note}: the import check gives the AWS SDK no credentials, so "
                           "what init does after that call was not checked")
    if verdict.status is Status.MISSING:
        raise BuildFailed(
            "import-check",
            f"{function}: importing {handler} failed: no module named {verdict.module!r}",
            hint=f"Add the package that provides {verdict.module!r} to the function's or a layer's requirements "
            "and run `relay lock`.",
        )
    if verdict.status is Status.TIMED_OUT:
        raise BuildFailed("import-check", f"{function}: importing {handler} took over {INIT_LIMIT_SECONDS:.0f}s")
    if verdict.status is Status.CRASHED:
        raise BuildFailed("import-check", f"{function}: importing {handler} crashed the interpreter: {verdict.error}")
    raise BuildFailed(
        "import-check",
        f"{function}: importing {handler} failed: {verdict.error or verdict.note}",
        hint="Fix the handler module so it imports cleanly under the target runtime.",
    )
