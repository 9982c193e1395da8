"""The build's import check: would each handler start on Lambda? Checked before anything ships.

How it is checked is `builder/runtime`'s model (`check.py`): imported under
the runtime's Python when this machine can run the bundle's code, resolved
statically when it cannot (the other architecture, or no such Python here).
This module turns either verdict into the build's terms: a module, a
distribution or a native extension that is absent fails the build (exit 4)
naming it, with a hint that tells "your code's package is not at the zip
root" from "the package is not in the lock"; a passing check says how it was
made (`imported` under which interpreter, `static` with what it resolved).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from builder.errors import BuildFailed
from builder.runtime.check import (
    INIT_LIMIT_SECONDS,
    CheckPlan,
    ImportVerdict,
    Method,
    Status,
    WarmInterpreters,
    check_import,
    check_static,
    handler_imports,
    model_fingerprint,
    plan_check,
)
from builder.runtime.mount import Trees, Zipped
from builder.runtime.static import Finding, Problem, StaticResult

__all__ = ["ImportCheck", "Origin", "Source", "Trees", "WarmInterpreters", "Zipped", "check_handler", "guess_preload",
           "model_fingerprint", "plan_check"]

STEP = "import-check"
# Folders never searched for the user's own code when wording a hint.
_NOT_CODE = {"node_modules", "site-packages", "dist", "cdk.out", "__pycache__", "tests", "test", "docs", "venv", "env"}
_SEARCH_DEPTH = 4
_ORIGINS = {"bundle": "bundle", "layers": "layers", "stdlib": "stdlib", "sdk": "AWS SDK"}


class Source(enum.StrEnum):
    """Where a function's verdict comes from."""

    CHECKED = "checked"  # this build ran the check
    SHARED = "shared"  # another function of this build with the same inputs (bundle, layers, handler, ...)
    CACHE = "cache"  # an earlier build's verdict for the same inputs (`builder.bundle.cache.Verdicts`)


@attrs.frozen
class ImportCheck:
    status: str  # Method: "imported" | "static" | "skipped"
    note: str = ""  # under which interpreter / what was resolved / why skipped
    source: Source = Source.CHECKED

    def to_json(self) -> dict:
        return {"status": self.status, "note": self.note, "source": self.source.value}


@attrs.frozen
class Origin:
    """Where the function comes from, for hints: the project's root and the function's requirements file."""

    project_root: Path
    requirements: Path | None = None


def check_handler(
    *, function: str, handler: str, runtime: str, architecture: str, memory: int,
    bundle: Zipped, layers: Sequence[Zipped], environment: dict[str, str], trees: Trees,
    warm: WarmInterpreters | None = None, plan: CheckPlan | None = None, origin: Origin | None = None,
    preload: list[str] | None = None,
) -> ImportCheck:
    """Check `handler`'s init as `plan` says (default: the best this machine can do); raise BuildFailed if it fails.

    `trees` keeps the bundle and layers unpacked (and their bytecode) for every check that mounts them;
    `warm` (optional) forks checks from an interpreter that imported the layer set's modules once, started
    from `preload` when nothing of these layers was remembered (`check.check_import`).
    """
    plan = plan or plan_check(runtime, architecture)
    judge = _Judge(function, handler, origin)
    if plan.method is Method.STATIC:
        result = check_static(bundle, layers, trees=trees, handler=handler, runtime=runtime, architecture=architecture)
        judge.static(result)
        return ImportCheck(Method.STATIC.value,
                           f"{plan.why}, so init was not run; {resolved_text(result, runtime, architecture)}")
    assert plan.interpreter is not None
    verdict = check_import(bundle, layers, trees=trees, warm=warm, python=plan.interpreter, function=function, handler=handler,
                           runtime=runtime, memory=memory, environment=environment, preload=preload)
    under = f"under {plan.interpreter.describe()}"
    if verdict.status is Status.AWS_CALL:
        # Init stopped at an AWS call it cannot make here: what it imports after it is resolved statically.
        result = check_static(bundle, layers, trees=trees, handler=handler, runtime=runtime,
                              architecture=architecture)
        judge.static(result)
        return ImportCheck(Method.IMPORTED.value, f"{under}: {verdict.note}, which the check gives no credentials; "
                           f"the rest of init was resolved statically ({resolved_text(result, runtime, architecture)})")
    judge.dynamic(verdict)
    return ImportCheck(Method.IMPORTED.value, under)


def guess_preload(bundle: Zipped, handler: str, *, plan: CheckPlan, trees: Trees) -> list[str] | None:
    """What `handler` imports at init from outside its bundle, for `check_handler`'s `preload`; None when
    the check will not fork (static, emulated) or the bundle's code cannot be read (the check says why)."""
    if plan.interpreter is None or plan.interpreter.launcher:
        return None
    try:
        return handler_imports(trees.tree(bundle), handler, plan.interpreter)
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None


def resolved_text(result: StaticResult, runtime: str, architecture: str) -> str:
    """What a static check resolved, in one line."""
    origins = " + ".join(f"{result.imports[where]} {label}" for where, label in _ORIGINS.items()
                         if result.imports.get(where))
    text = (f"resolved for {runtime} {architecture}: {result.modules} own modules, imports found in "
            f"{origins or 'nothing'}, {result.requirements} requirements of {result.distributions} distributions, "
            f"{result.extensions} native files")
    if result.unparsed:
        text += f"; not parsed (newer syntax than this Python reads): {', '.join(result.unparsed)}"
    if result.unresolved:
        text += f"; not resolved: {', '.join(result.unresolved)}"
    return text


class _Judge:
    """Verdicts -> BuildFailed with the finding named and a hint for it."""

    def __init__(self, function: str, handler: str, origin: Origin | None) -> None:
        self.function, self.handler, self.origin = function, handler, origin

    def static(self, result: StaticResult) -> None:
        if result.ok:
            return
        texts = _findings_text(result.findings)
        more = f" (and: {'; '.join(texts[1:5])}{'; ...' if len(texts) > 5 else ''})" if len(texts) > 1 else ""
        raise BuildFailed(STEP, f"{self.function}: {self.handler} would not start on Lambda: {texts[0]}{more}",
                          hint=self._hint(result.findings[0]))

    def dynamic(self, verdict: ImportVerdict) -> None:
        status = verdict.status
        if status is Status.OK:
            return
        prefix = f"{self.function}: importing {self.handler} failed"
        if status is Status.MISSING:
            raise BuildFailed(STEP, f"{prefix}: no module named {verdict.module!r}",
                              hint=self.missing_hint(verdict.module))
        if status is Status.FOREIGN:
            raise BuildFailed(STEP, f"{prefix}: {verdict.note}", hint=_FOREIGN_HINT)
        if status is Status.TIMED_OUT:
            raise BuildFailed(STEP, f"{self.function}: importing {self.handler} took over {INIT_LIMIT_SECONDS:.0f}s")
        if status is Status.CRASHED:
            raise BuildFailed(STEP, f"{self.function}: importing {self.handler} crashed the interpreter: {verdict.error}")
        raise BuildFailed(STEP, f"{prefix}: {verdict.error or verdict.note}",
                          hint="Fix the handler module so it imports cleanly under the target runtime.")

    def _hint(self, finding: Finding) -> str:
        if finding.problem is Problem.MISSING:
            return self.missing_hint(finding.name)
        if finding.problem is Problem.RELATIVE:
            return self.missing_hint(self.handler.partition(".")[0], relative=True)
        if finding.problem is Problem.FOREIGN:
            return _FOREIGN_HINT
        if finding.problem is Problem.REQUIREMENT:
            return (f"Add {finding.name} to the requirements (or a layer's) and run `relay lock`: a lock resolved "
                    "by relay holds every dependency, so this one was edited by hand or resolved for another target.")
        if finding.problem is Problem.NO_HANDLER:
            return "Check the handler in relay.toml: `module.function`, the function defined at module level."
        return "Fix the module so it parses under the target runtime's Python."

    def missing_hint(self, module: str, *, relative: bool = False) -> str:
        """"Your code is not at the zip root" when the project has it elsewhere, else "not in the lock"."""
        top = module.partition(".")[0]
        found = _find_in_project(self.origin.project_root, top) if self.origin else None
        if found is not None:
            parent, name = found.parent.as_posix(), found.name
            where = f'`source = "{parent}"` and ' if parent not in ("", ".") else ""
            return (f"{top!r} is your code ({found.as_posix()}/ in the project) but it is not at the zip's root: "
                    "`source` ships the contents of its folder, not the folder. Ship the package under its own "
                    f'name with {where}`packages = ["{name}"]` on the function.')
        if relative:
            return ("A relative import reaches above the top-level package: ship the package under its own name "
                    "(`packages = [...]`) so the handler is `package.module.function`.")
        requirements = self._requirements()
        return (f"{top!r} is not in the lock: add the distribution that provides it to {requirements} "
                "(or to a layer's requirements) and run `relay lock`.")

    def _requirements(self) -> str:
        if self.origin is None or self.origin.requirements is None:
            return "the function's requirements (set `requirements` on the function)"
        path = self.origin.requirements
        try:
            return path.relative_to(self.origin.project_root).as_posix()
        except ValueError:
            return str(path)


_FOREIGN_HINT = ("A native extension was built for another Python or architecture: lock and build for the "
                 "function's runtime and architecture (`relay lock`), and ship no compiled files from the host.")


def _findings_text(findings: tuple[Finding, ...]) -> list[str]:
    """One text per finding; the distributions that require the same absent one are named together."""
    texts: list[str] = []
    required: dict[str, list[str]] = {}
    for finding in findings:
        if finding.problem is Problem.REQUIREMENT:
            if finding.name not in required:
                required[finding.name] = []
                texts.append(finding.name)  # a placeholder, filled in below
            required[finding.name].append(f"{finding.where.rsplit(' (', 1)[0]} ({finding.detail})")
        else:
            texts.append(_finding_text(finding))
    return [
        f"distribution {text!r} is not installed in the bundle, its layers or the runtime; required by "
        f"{', '.join(required[text])}" if text in required else text
        for text in texts
    ]


def _finding_text(finding: Finding) -> str:
    if finding.problem is Problem.MISSING:
        return f"no module named {finding.name!r} (imported at {finding.where})"
    if finding.problem is Problem.FOREIGN:
        return f"native extension {finding.name!r} at {finding.where}: {finding.detail}"
    if finding.problem is Problem.NO_HANDLER:
        return f"{finding.detail} ({finding.where})"
    if finding.problem is Problem.RELATIVE:
        return f"relative import {finding.name} at {finding.where}: {finding.detail}"
    return f"{finding.name} does not parse ({finding.where}: {finding.detail})"


def _find_in_project(root: Path, name: str) -> Path | None:
    """The project-relative path of a folder of Python code named `name`, nearest the root first."""
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        following: list[Path] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False) or entry.name.startswith(".") or entry.name in _NOT_CODE:
                    continue
                if entry.name == name and _holds_python(Path(entry.path)):
                    return Path(entry.path).relative_to(root)
                following.append(Path(entry.path))
        level = following
    return None


def _holds_python(folder: Path) -> bool:
    return any(p.suffix == ".py" for p in folder.iterdir() if p.is_file())
