"""Run the shell steps of a CI template on this machine, the way its CI would run them.

The point is drift: a template whose commands no longer match relay's CLI must
fail a test. So the harness runs the template's own commands, in the CI's
order, with the CI's data flow between steps (step outputs, dotenv reports,
exported variables, artifacts), each job in a fresh copy of the repository.

Where it departs from the real CI (the substitutions), and nowhere else:

- A command line `pip install ...` (the install step) runs as `:`, a no-op:
  relay is already installed and the test puts its bin folder first on PATH.
- GitHub `uses:` steps are skipped when listed in SKIPPED_ACTIONS (checkout:
  the job's folder already is a fresh copy of the repository; setup-python:
  the test's Python is on PATH; configure-aws-credentials: the moto
  credentials are already in the environment; cache: every job starts with
  a cold cache, as a first run does). Any other `uses:` is refused; the
  `with:` of a skipped step is not evaluated.
- GitHub `${{ }}` expressions are evaluated here, from: `needs.<job>.outputs`
  and `steps.<id>.outputs` (read back from $GITHUB_OUTPUT as the runner
  does), `inputs`, `vars` and `secrets` given by the test, string literals
  and `||`. Any other expression is refused, as are `if:`, matrices and keys
  the harness does not know: a template the harness cannot run faithfully
  fails rather than runs differently. $GITHUB_ENV is honoured: what a step
  writes there is in the environment of the job's later steps.
- GitLab: the test picks the jobs (rules, `when`, image, environment,
  resource_group and cache are not evaluated); variables (global < job <
  dotenv < project < pipeline, `$NAME` / `${NAME}` in a template's variable
  expanded from those before it and the predefined ones), the default
  before_script, `id_tokens` (each a JWT the test's fake identity provider
  signs with nothing: moto's STS does not check it), artifact paths and
  dotenv reports are honoured; `extends`, `include` and after_script are
  refused.
- CodeBuild: env.variables, secrets-manager / parameter-store values (given by
  the test, by variable name) and exported-variables are honoured; one bash
  runs all phases in order (as buildspec 0.2 does) and stops at the first
  failure (CodeBuild would still run post_build); runtime-versions are not
  evaluated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import yaml

# `uses:` steps the harness skips, and why (see the module docstring).
SKIPPED_ACTIONS = {
    "actions/checkout": "the job already runs in a fresh copy of the repository",
    "actions/setup-python": "the test's Python is first on PATH",
    "aws-actions/configure-aws-credentials": "the moto credentials are in the environment",
    "actions/cache": "the harness keeps no cache between jobs: every job starts cold, as a first run does",
}
_PIP_INSTALL = re.compile(r"^\s*(python3?\s+-m\s+)?pip3?\s+install\b")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_STEP_TIMEOUT = 300


class HarnessError(Exception):
    """The template uses something the harness cannot run faithfully."""


@attrs.frozen
class CommandRun:
    where: str  # "relay.yml publish: Build"
    command: str
    code: int | None  # None: not run, because an earlier command failed

    def __str__(self) -> str:
        state = "not run" if self.code is None else f"exit {self.code}"
        return f"[{state}] {self.where}: {self.command}"


@attrs.frozen
class Outcome:
    """What running a template did: every command with its exit code, the log, the outputs."""

    commands: tuple[CommandRun, ...]
    log: str
    outputs: Mapping[str, object] = attrs.field(factory=dict)  # job outputs / exported variables
    substituted: int = 0  # install commands replaced by a no-op

    @property
    def ok(self) -> bool:
        return bool(self.commands) and all(c.code == 0 for c in self.commands)

    @property
    def failed(self) -> CommandRun | None:
        return next((c for c in self.commands if c.code not in (0, None)), None)

    def report(self) -> str:
        return "\n".join(map(str, self.commands)) + "\n--- log (tail) ---\n" + self.log[-6000:]


@attrs.frozen
class CiWorld:
    """The repository a CI would check out, and what the CI gives the template."""

    repo: Path  # checked out (copied) fresh for every job
    scratch: Path  # where job folders and runner files go
    env: Mapping[str, str]  # the machine's environment (PATH, AWS endpoint, ...)
    vars: Mapping[str, str] = attrs.field(factory=dict)  # GitHub `vars`
    secrets: Mapping[str, str] = attrs.field(factory=dict)  # GitHub `secrets`; CodeBuild secrets by variable

    def checkout(self, name: str) -> Path:
        folder = self.scratch / name
        n = 1
        while folder.exists():
            n += 1
            folder = self.scratch / f"{name}-{n}"
        shutil.copytree(self.repo, folder, symlinks=True)
        return folder

    def temp_dir(self, name: str) -> Path:
        folder = self.runner_file(name)
        folder.unlink()
        folder.mkdir()
        return folder

    def runner_file(self, name: str) -> Path:
        folder = self.scratch / "runner"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{name}-{n}"
        path.touch()
        return path


@attrs.frozen
class FileVariable:
    """A GitLab variable of type File: the job sees the path of a file holding `content`."""

    content: str


# -- running commands ------------------------------------------------------------------------------------------


def substitute_install(command: str) -> tuple[str, int]:
    """`command` with each `pip install ...` line replaced by `:`, and how many were."""
    lines = command.splitlines()
    kept = [":" if _PIP_INSTALL.match(line) else line for line in lines]
    return "\n".join(kept), sum(1 for line in lines if _PIP_INSTALL.match(line))


def run_commands(world: CiWorld, where: str, commands: Sequence[str], *, cwd: Path, env: Mapping[str, str],
                 trailer: str = "") -> tuple[list[CommandRun], str, int]:
    """Run `commands` in one `bash -eo pipefail`, in order, stopping at the first failure.

    Returns each command's result (the one that failed has the shell's code;
    those after it None), the combined output and the number of install
    commands substituted. `trailer` runs after the last command when all passed.
    """
    progress = world.runner_file("progress")
    script_lines = ["set -eo pipefail"]
    substituted = 0
    # Before each command its index goes to `progress`: the last index written is the one that failed.
    for index, command in enumerate([*commands, trailer]):
        text, n = substitute_install(command)
        substituted += n
        script_lines.append(f"printf '%s\\n' {index} >> '{progress}'")
        script_lines.append(text)
    script = world.runner_file("script.sh")
    script.write_text("\n".join(script_lines) + "\n", encoding="utf-8")
    done = subprocess.run(["bash", "--noprofile", "--norc", str(script)], cwd=cwd, env=dict(env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=_STEP_TIMEOUT)
    started = [int(line) for line in progress.read_text().split()]
    last = started[-1] if started else -1
    if done.returncode == 0:
        last = len(commands)
    results = [CommandRun(where, command.strip(), 0 if index < last else done.returncode if index == last else None)
               for index, command in enumerate(commands)]
    if last == len(commands) and done.returncode != 0:
        results.append(CommandRun(where, "(harness trailer)", done.returncode))
    return results, f"== {where}\n{done.stdout}", substituted


def not_run(where: str, commands: Iterable[str]) -> list[CommandRun]:
    return [CommandRun(where, c.strip(), None) for c in commands]


@attrs.define
class _Recorder:
    """Runs a pipeline's command groups in order; once one fails, the rest are recorded as not run."""

    commands: list[CommandRun] = attrs.field(factory=list)
    logs: list[str] = attrs.field(factory=list)
    substituted: int = 0
    failed: bool = False

    def run(self, world: CiWorld, where: str, commands: Sequence[str], *, cwd: Path, env: Mapping[str, str],
            trailer: str = "") -> None:
        if self.failed:
            self.commands += not_run(where, commands)
            return
        results, log, substituted = run_commands(world, where, commands, cwd=cwd, env=env, trailer=trailer)
        self.commands += results
        self.logs.append(log)
        self.substituted += substituted
        self.failed = not all(r.code == 0 for r in results)

    def outcome(self, outputs: Mapping[str, object]) -> Outcome:
        return Outcome(tuple(self.commands), "\n".join(self.logs), outputs, self.substituted)


def load_yaml(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise HarnessError(f"{path}: not a YAML mapping")
    return doc


def _refuse_unknown(what: str, mapping: Mapping, known: set[str]) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise HarnessError(f"{what}: the harness cannot run {', '.join(map(str, unknown))} faithfully")


# -- GitHub Actions --------------------------------------------------------------------------------------------

_GH_WORKFLOW_KEYS = {"name", "on", True, "permissions", "concurrency", "defaults", "env", "jobs", "run-name"}
_GH_JOB_KEYS = {"name", "runs-on", "needs", "outputs", "steps", "env", "environment", "permissions",
                "concurrency", "timeout-minutes"}
_GH_STEP_KEYS = {"name", "id", "run", "uses", "with", "env", "shell", "timeout-minutes"}


def evaluate(text: str, context: Mapping[str, object], where: str) -> str:
    """`text` with every `${{ expr }}` replaced by its value (see the module docstring for what is supported)."""
    return _EXPRESSION.sub(lambda m: _expression(m.group(1), context, where), text)


def _expression(expr: str, context: Mapping[str, object], where: str) -> str:
    value = ""
    for operand in (part.strip() for part in expr.split("||")):
        value = _operand(operand, context, where)
        if value:
            return value
    return value


def _operand(operand: str, context: Mapping[str, object], where: str) -> str:
    literal = re.fullmatch(r"'((?:[^']|'')*)'", operand)
    if literal:
        return literal.group(1).replace("''", "'")
    if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", operand):
        raise HarnessError(f"{where}: cannot evaluate the expression {operand!r}")
    root, *path = operand.split(".")
    if root not in context:
        raise HarnessError(f"{where}: unknown context {root!r} in {operand!r}")
    value: object = context[root]
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping):
            return ""
        if key not in value:
            # A wrong job or step id is a template bug GitHub reports too; a missing input/var is ''.
            if depth == 0 and root in ("needs", "steps"):
                raise HarnessError(f"{where}: {operand!r}: no {root[:-1]} {key!r} here")
            return ""
        value = value[key]
    return "" if value is None else str(value)


def _needs(job: Mapping) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def github_job_order(jobs: Mapping[str, Mapping]) -> list[str]:
    """Jobs in an order that respects `needs` (file order among the ready ones)."""
    order: list[str] = []
    pending = list(jobs)
    while pending:
        ready = [name for name in pending if all(dep in order for dep in _needs(jobs[name]))]
        if not ready:
            raise HarnessError(f"jobs {pending}: `needs` names a missing job or makes a cycle")
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _validate_github(doc: Mapping, name: str) -> None:
    _refuse_unknown(name, doc, _GH_WORKFLOW_KEYS)
    shell = doc.get("defaults", {}).get("run", {})
    _refuse_unknown(f"{name} defaults.run", shell, {"shell"})
    if shell.get("shell", "bash") != "bash":
        raise HarnessError(f"{name}: defaults.run.shell must be bash")
    for job_id, job in doc["jobs"].items():
        _refuse_unknown(f"{name} job {job_id}", job, _GH_JOB_KEYS)
        for step in job["steps"]:
            where = f"{name} job {job_id} step {step.get('name') or step.get('uses')}"
            _refuse_unknown(where, step, _GH_STEP_KEYS)
            if ("run" in step) == ("uses" in step):
                raise HarnessError(f"{where}: needs exactly one of run/uses")
            if "uses" in step and step["uses"].split("@")[0] not in SKIPPED_ACTIONS:
                raise HarnessError(f"{where}: unknown action {step['uses']!r} (SKIPPED_ACTIONS lists the known ones)")
            if step.get("shell", "bash") != "bash":
                raise HarnessError(f"{where}: shell must be bash")


def _dispatch_inputs(doc: Mapping, given: Mapping[str, str], name: str) -> dict[str, str]:
    triggers = doc.get("on", doc.get(True)) or {}
    declared = (triggers.get("workflow_dispatch") or {}).get("inputs", {}) if isinstance(triggers, dict) else {}
    unknown = set(given) - set(declared)
    if unknown:
        raise HarnessError(f"{name}: no workflow_dispatch input(s) {sorted(unknown)}")
    inputs = {}
    for key, spec in declared.items():
        value = str(given.get(key, spec.get("default", "")))
        if spec.get("required") and not value:
            raise HarnessError(f"{name}: input {key!r} is required")
        if spec.get("type") == "choice" and value not in spec.get("options", ()):
            raise HarnessError(f"{name}: input {key}={value!r} is not one of {spec.get('options')}")
        inputs[key] = value
    return inputs


def parse_github_output(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIM` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            outputs[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def run_github(workflow: Path, world: CiWorld, *, inputs: Mapping[str, str] | None = None) -> Outcome:
    """Run a GitHub Actions workflow's `run:` steps, jobs in `needs` order, each job in a fresh checkout.

    The outcome's outputs are the jobs' outputs, by job id.
    """
    doc = load_yaml(workflow)
    _validate_github(doc, workflow.name)
    given_inputs = _dispatch_inputs(doc, inputs or {}, workflow.name)
    recorder = _Recorder()
    job_outputs: dict[str, dict[str, str]] = {}
    for job_id in github_job_order(doc["jobs"]):
        context: dict[str, object] = {
            "inputs": given_inputs, "vars": dict(world.vars), "secrets": dict(world.secrets),
            "github": {"event": {"inputs": given_inputs}},
            "needs": {dep: {"outputs": job_outputs[dep]} for dep in _needs(doc["jobs"][job_id])}, "steps": {},
        }
        job_outputs[job_id] = _run_github_job(doc, job_id, f"{workflow.name} {job_id}", context, world, recorder)
    return recorder.outcome(job_outputs)


def _run_github_job(doc: Mapping, job_id: str, where: str, context: dict[str, object], world: CiWorld,
                    recorder: _Recorder) -> dict[str, str]:
    job = doc["jobs"][job_id]
    workspace = world.checkout(f"gh-{job_id}")
    base = {**world.env, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(world.temp_dir(f"gh-{job_id}")),
            **_evaluated_env(doc.get("env", {}), context, f"{where} (workflow env)"),
            **_evaluated_env(job.get("env", {}), context, f"{where} env")}
    steps: dict[str, object] = context["steps"]  # type: ignore[assignment]
    exported: dict[str, str] = {}  # what earlier steps wrote to $GITHUB_ENV
    for step in job["steps"]:
        if "uses" in step:
            continue  # validated: one of SKIPPED_ACTIONS
        step_where = f"{where}: {step.get('name') or step.get('id') or 'run'}"
        output_file = world.runner_file("github_output")
        env_file = world.runner_file("github_env")
        env = {**base, **exported, **_evaluated_env(step.get("env", {}), context, step_where),
               "GITHUB_OUTPUT": str(output_file), "GITHUB_ENV": str(env_file)}
        recorder.run(world, step_where, [evaluate(step["run"], context, step_where)], cwd=workspace, env=env)
        exported.update(parse_github_output(env_file.read_text(encoding="utf-8")))
        if "id" in step:
            steps[step["id"]] = {"outputs": parse_github_output(output_file.read_text(encoding="utf-8"))}
    if recorder.failed:
        return {}
    return {key: evaluate(str(value), context, f"{where} outputs") for key, value in job.get("outputs", {}).items()}


def _evaluated_env(env: Mapping, context: Mapping[str, object], where: str) -> dict[str, str]:
    return {str(key): evaluate(str(value), context, where) for key, value in env.items()}


# -- GitLab CI -------------------------------------------------------------------------------------------------

_GL_GLOBAL_KEYS = {"stages", "variables", "workflow", "default", "include", "image", "services", "before_script",
                   "after_script", "cache"}
_GL_JOB_KEYS = {"stage", "script", "before_script", "variables", "rules", "when", "allow_failure", "needs",
                "dependencies", "artifacts", "environment", "resource_group", "image", "timeout", "interruptible",
                "id_tokens", "cache"}
_GL_DEFAULT_KEYS = {"image", "before_script", "id_tokens", "cache", "interruptible", "timeout"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@attrs.frozen
class GitlabJob:
    name: str
    stage: str
    spec: Mapping


def gitlab_jobs(doc: Mapping) -> list[GitlabJob]:
    """The jobs (not hidden `.name` templates, not global keywords), in stage order, file order within a stage."""
    for key in ("include", "after_script"):
        if key in doc or key in doc.get("default", {}):
            raise HarnessError(f".gitlab-ci.yml: the harness cannot run {key!r} faithfully")
    _refuse_unknown(".gitlab-ci.yml default", doc.get("default", {}), _GL_DEFAULT_KEYS)
    stages = list(doc.get("stages", ["build", "test", "deploy"]))
    jobs = []
    for name, spec in doc.items():
        if name in _GL_GLOBAL_KEYS or str(name).startswith("."):
            continue
        if not isinstance(spec, dict) or "script" not in spec:
            raise HarnessError(f".gitlab-ci.yml: {name!r} is neither a keyword nor a job with a script")
        _refuse_unknown(f".gitlab-ci.yml job {name}", spec, _GL_JOB_KEYS)
        stage = spec.get("stage", "test")
        if stage not in stages:
            raise HarnessError(f".gitlab-ci.yml job {name}: stage {stage!r} is not in stages {stages}")
        jobs.append(GitlabJob(name, stage, spec))
    return sorted(jobs, key=lambda job: stages.index(job.stage))


def _gitlab_variables(block: Mapping | None, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """A `variables:` block's values, `$NAME` / `${NAME}` expanded from `known` and the block's earlier values.

    As GitLab does; a name it cannot resolve is left as written.
    """
    values: dict[str, str] = {}
    for key, value in (block or {}).items():
        text = str(value.get("value", "")) if isinstance(value, dict) else str(value)
        values[key] = _expand(text, {**(known or {}), **values})
    return values


def _expand(text: str, scope: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: scope.get(m.group(1) or m.group(2), m.group(0)), text)


def fake_id_token(name: str, spec: Mapping, job: str) -> str:
    """A JWT-shaped token for an `id_tokens:` entry (unsigned: moto's AssumeRoleWithWebIdentity does not check it)."""
    import base64
    import json

    def part(doc: Mapping) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    claims = {"iss": "https://gitlab.example.com", "aud": spec.get("aud", ""), "sub": f"project_path:group/app:job:{job}",
              "name": name}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def _flatten(lines: object) -> list[str]:
    if isinstance(lines, str):
        return [lines]
    return [line for item in (lines or []) for line in _flatten(item)]


def _gitlab_upstream(job: GitlabJob, finished: Sequence[GitlabJob], stages: list[str]) -> list[str]:
    spec = job.spec
    if "dependencies" in spec:
        return list(spec["dependencies"])
    if "needs" in spec:
        return [n if isinstance(n, str) else n["job"] for n in spec["needs"]]
    return [f.name for f in finished if stages.index(f.stage) < stages.index(job.stage)]


def run_gitlab(ci_file: Path, world: CiWorld, jobs: Sequence[str], *,
               project_variables: Mapping[str, str | FileVariable] | None = None,
               pipeline_variables: Mapping[str, str] | None = None) -> Outcome:
    """Run the named jobs of one pipeline in stage order; each in a fresh checkout with its upstream artifacts."""
    doc = load_yaml(ci_file)
    stages = list(doc.get("stages", []))
    chosen = [job for job in gitlab_jobs(doc) if job.name in jobs]
    missing = set(jobs) - {job.name for job in chosen}
    if missing:
        raise HarnessError(f"{ci_file.name}: no job(s) {sorted(missing)}")
    project = {key: _file_variable(world, key, value) for key, value in (project_variables or {}).items()}
    artifacts: dict[str, tuple[Path, dict[str, str]]] = {}  # job -> (its folder, its dotenv)
    finished: list[GitlabJob] = []
    recorder = _Recorder()
    for job in chosen:
        workspace = world.checkout(f"gl-{job.name}")
        dotenv: dict[str, str] = {}
        for upstream in _gitlab_upstream(job, finished, stages):
            if upstream in artifacts:
                folder, values = artifacts[upstream]
                _copy_artifacts(folder, workspace, doc[upstream].get("artifacts", {}).get("paths", []))
                dotenv.update(values)
        predefined = {"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": str(workspace), "CI_JOB_NAME": job.name,
                      "CI_PROJECT_ID": "42", "CI_JOB_ID": str(1000 + len(finished)), "CI_PIPELINE_ID": "7"}
        tokens = job.spec.get("id_tokens", doc.get("default", {}).get("id_tokens", {}))
        predefined |= {name: fake_id_token(name, spec, job.name) for name, spec in tokens.items()}
        overrides = {**dotenv, **project, **(pipeline_variables or {})}
        global_vars = _gitlab_variables(doc.get("variables"), {**predefined, **overrides})
        job_vars = _gitlab_variables(job.spec.get("variables"), {**predefined, **global_vars, **overrides})
        env = {**world.env, **predefined, **global_vars, **job_vars, **overrides}
        lines = _flatten(job.spec.get("before_script", doc.get("default", {}).get("before_script", [])))
        recorder.run(world, f"{ci_file.name} {job.name}", lines + _flatten(job.spec["script"]), cwd=workspace, env=env)
        report = job.spec.get("artifacts", {}).get("reports", {}).get("dotenv")
        artifacts[job.name] = (workspace, _read_dotenv(workspace / report) if report and not recorder.failed else {})
        finished.append(job)
    return recorder.outcome({name: values for name, (_, values) in artifacts.items()})


def _file_variable(world: CiWorld, key: str, value: str | FileVariable) -> str:
    if not isinstance(value, FileVariable):
        return value
    path = world.runner_file(key)
    path.write_text(value.content, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def _copy_artifacts(source: Path, target: Path, paths: Sequence[str]) -> None:
    for rel in paths:
        found = source / rel
        if found.is_dir():
            shutil.copytree(found, target / rel, dirs_exist_ok=True)
        elif found.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, target / rel)


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise HarnessError(f"dotenv report {path.name} was not written")
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


# -- AWS CodeBuild ---------------------------------------------------------------------------------------------

CODEBUILD_PHASES = ("install", "pre_build", "build", "post_build")
_CB_ENV_KEYS = {"shell", "variables", "secrets-manager", "parameter-store", "exported-variables"}
_CB_PHASE_KEYS = {"commands", "runtime-versions"}


def codebuild_commands(doc: Mapping, name: str) -> list[tuple[str, str]]:
    """(phase, command) in the order CodeBuild runs them."""
    if str(doc.get("version")) != "0.2":
        raise HarnessError(f"{name}: only buildspec version 0.2 is supported")
    _refuse_unknown(f"{name} phases", doc.get("phases", {}), set(CODEBUILD_PHASES))
    found = []
    for phase in CODEBUILD_PHASES:
        spec = doc.get("phases", {}).get(phase) or {}
        _refuse_unknown(f"{name} phase {phase}", spec, _CB_PHASE_KEYS)
        found += [(phase, command) for command in spec.get("commands", [])]
    return found


def run_codebuild(buildspec: Path, world: CiWorld, *, variables: Mapping[str, str] | None = None) -> Outcome:
    """Run a buildspec's phases in one bash, in a fresh checkout; outputs are its exported variables.

    `variables` are the project's (or start-build's) environment variables;
    they win over the buildspec's own, as in CodeBuild.
    """
    doc = load_yaml(buildspec)
    name = buildspec.name
    env_spec = doc.get("env", {})
    _refuse_unknown(f"{name} env", env_spec, _CB_ENV_KEYS)
    if env_spec.get("shell", "bash") != "bash":
        raise HarnessError(f"{name}: env.shell must be bash")
    secrets = {}
    for key in (*env_spec.get("secrets-manager", {}), *env_spec.get("parameter-store", {})):
        if key not in world.secrets:
            raise HarnessError(f"{name}: the test gives no value for the secret {key}")
        secrets[key] = world.secrets[key]
    workspace = world.checkout(f"cb-{buildspec.stem}")
    env = {**world.env, "CODEBUILD_SRC_DIR": str(workspace), "CODEBUILD_BUILD_SUCCEEDING": "1",
           **{k: str(v) for k, v in env_spec.get("variables", {}).items()}, **secrets, **(variables or {})}
    exported = list(env_spec.get("exported-variables", []))
    exports = world.runner_file("exported")
    trailer = "\n".join(f"printf '%s=%s\\n' {key} \"${{{key}-}}\" >> '{exports}'" for key in exported)
    recorder = _Recorder()
    recorder.run(world, name, [c for _, c in codebuild_commands(doc, name)], cwd=workspace, env=env, trailer=trailer)
    return recorder.outcome(_read_dotenv(exports) if exported and not recorder.failed else {})


# -- static view: every shell command of a template ------------------------------------------------------------


def shell_commands(template: Path) -> list[str]:
    """Every shell command a template runs (GitHub `run:`, GitLab scripts, CodeBuild phase commands)."""
    doc = load_yaml(template)
    if "jobs" in doc:
        return [step["run"] for job in doc["jobs"].values() for step in job["steps"] if "run" in step]
    if "phases" in doc:
        return [command for _, command in codebuild_commands(doc, template.name)]
    found = _flatten(doc.get("default", {}).get("before_script", []))
    for job in gitlab_jobs(doc):
        found += _flatten(job.spec.get("before_script", [])) + _flatten(job.spec["script"])
    return found


def programs(command: str) -> set[str]:
    """The programs a shell command starts (first words of its simple commands, `$(...)` included)."""
    import shlex

    found: set[str] = set()
    for line in command.splitlines():
        found |= _line_programs(shlex.shlex(line, posix=True, punctuation_chars=True))
    return found


def _line_programs(lexer) -> set[str]:
    lexer.whitespace_split = True
    found: set[str] = set()
    expect_command = True
    skip_next = False
    for token in lexer:
        if skip_next:  # the file name after a redirection
            skip_next = False
            continue
        if token in ("<", ">", ">>", "2>", "<<"):
            skip_next = True
            continue
        if token in (";", "&&", "||", "|", "(", ")", "&", "\n"):
            expect_command = token != ")"
            continue
        if expect_command:
            if re.match(r"^[A-Za-z_]\w*=", token):
                # an assignment; `NAME=$(cmd ...)` continues with `(` then the command
                continue
            found.add(token)
            expect_command = False
    return found


def harness_env(base: Mapping[str, str], bin_dir: Path) -> dict[str, str]:
    """The machine environment a job starts from: `base` with relay's bin folder first on PATH."""
    env = dict(base)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    return env
