"""Build benchmark: relay vs `sam build` vs plain `pip install -t` + `zip -r`.

Run with relay's venv (`make bench`, or `.venv/bin/python bench/build_bench.py`).
Each repetition builds a fresh copy of examples/shop, in its own temp folder,
with every tool in turn, and times:

  relay    cold (empty relay cache), no-op rebuild, one-function rebuild
  sam      cold `sam build`, first `sam build --cached`, no-op `sam build
           --cached`, one-function `sam build --cached`
  pip      cold `pip install -t` + `zip -r` of every function and layer (it has
           no cache of its own: every run is a full build)

and records the sha256 of every bundle, to tell whether two cold builds in
different folders, with a different umask, TZ and file mtimes, gave the same
zips. Medians go to a table on stdout and to bench/results/<date>.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
EXAMPLE = REPO / "examples" / "shop"
RESULTS = BENCH / "results"
SAM_VENV = BENCH / ".venv-sam"
SAM_VERSION = "1.170.0"
COMMAND_TIMEOUT = 1800

# Build N runs under the Nth variant, so two consecutive cold builds differ in
# everything that must not matter: folder, umask, TZ and file mtimes (fresh copy).
VARIANTS = ({"umask": 0o022, "tz": "UTC"}, {"umask": 0o002, "tz": "Asia/Tokyo"})
EDITED_FUNCTION = "orders"

sys.path.insert(0, str(REPO))
from builder.config import Project, load_project  # noqa: E402  (after the path is set)


class ToolFailed(Exception):
    """A tool's command failed; the benchmark goes on with the other tools."""


# --------------------------------------------------------------------------- running


@dataclass
class Runner:
    """Runs timed commands, keeping each one's output in a log file."""

    logs: Path
    base_env: dict[str, str]

    def run(self, label: str, cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
            umask: int = 0o022) -> float:
        log = self.logs / f"{label}.log"
        started = time.perf_counter()
        with open(log, "wb") as out:
            try:
                proc = subprocess.run(cmd, cwd=cwd, env={**self.base_env, **(env or {})}, stdout=out,
                                      stderr=subprocess.STDOUT, umask=umask, timeout=COMMAND_TIMEOUT)
            except FileNotFoundError as exc:
                raise ToolFailed(f"{label}: cannot run {cmd[0]}: {exc.strerror}") from None
            except subprocess.TimeoutExpired:
                raise ToolFailed(f"{label}: timed out after {COMMAND_TIMEOUT} s (log: {log})") from None
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise ToolFailed(f"{label}: `{' '.join(cmd[:3])} ...` exited {proc.returncode}\n{_tail(log)}")
        return elapsed


def _tail(log: Path, lines: int = 12) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    useful = [line for line in text if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join("    | " + line for line in useful[-lines:])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fresh_copy(dest: Path, locks: dict[str, bytes]) -> Path:
    """A copy of the example with new mtimes (copy, not copy2) and the locks added."""
    shutil.copytree(EXAMPLE, dest, copy_function=shutil.copy,
                    ignore=shutil.ignore_patterns("dist", ".relay", ".aws-sam", "build", "__pycache__", "*.pyc"))
    for rel, data in locks.items():
        (dest / rel).write_bytes(data)
    return dest


def edit_function(copy: Path, project: Project) -> None:
    """A real source change to one function, as a developer would make."""
    fn = project.function(EDITED_FUNCTION)
    handler = copy / fn.source.relative_to(project.root) / (fn.handler_module.replace(".", "/") + ".py")
    with open(handler, "a", encoding="utf-8") as fh:
        fh.write(f"\n# benchmark edit {time.time_ns()}\n")


# --------------------------------------------------------------------------- locks


def lock_paths(project: Project) -> list[Path]:
    """Every lock the build needs, relative to the project root."""
    inputs = [fn.requirements for fn in project.functions.values() if fn.requirements]
    inputs += [layer.requirements for layer in project.layers.values() if layer.requirements]
    return sorted({p.relative_to(project.root).with_suffix(".txt") for p in inputs})


def prepare_locks(project: Project, runner: Runner, relay: Path, work: Path) -> tuple[dict[str, bytes], str]:
    """The lock files every copy gets, and where they came from.

    The committed locks when examples/shop has them all; else `relay lock` in
    a scratch copy; else pip-compile directly (said so in the results).
    """
    wanted = lock_paths(project)
    if all((EXAMPLE / rel).is_file() for rel in wanted):
        return {str(rel): (EXAMPLE / rel).read_bytes() for rel in wanted}, "committed in examples/shop"
    scratch = fresh_copy(work / "locks" / "shop", {})
    try:
        runner.run("locks-relay-lock", [str(relay), "lock"], cwd=scratch,
                   env={"RELAY_CACHE_DIR": str(work / "locks" / "relay-cache")})
        source = "generated by `relay lock` (examples/shop has no committed locks)"
    except ToolFailed as exc:
        print(f"note: `relay lock` failed, locking with pip-compile instead:\n{exc}", file=sys.stderr)
        for rel in wanted:
            runner.run(f"locks-pip-compile-{rel.parent.name}", [
                sys.executable, "-m", "piptools", "compile", "--generate-hashes", "--allow-unsafe",
                "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
                "--quiet", "--output-file", str(rel), str(rel.with_suffix(".in")),
            ], cwd=scratch)
        source = (f"generated by pip-compile --generate-hashes under Python {platform.python_version()} "
                  "(examples/shop has no committed locks and `relay lock` failed)")
    return {str(rel): (scratch / rel).read_bytes() for rel in wanted}, source


def lock_is_empty(data: bytes) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in data.decode().splitlines())


# --------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """One build tool: its timed steps, what each runs, and how to read its bundles."""

    name: str
    label: str
    steps: tuple[str, ...]

    def setup(self, copy: Path, rep: int) -> None:
        """Unmeasured preparation of a fresh copy."""

    def env(self, copy: Path, rep: int) -> dict[str, str]:
        return {}

    def command(self, step: str, copy: Path) -> list[str]:
        raise NotImplementedError

    def bundles(self, copy: Path) -> dict[str, str]:
        """Bundle name -> sha256 of its zip."""
        raise NotImplementedError

    def versions(self) -> str:
        return ""


@dataclass
class Relay(Tool):
    binary: Path = Path()
    extra: tuple[str, ...] = ()

    def env(self, copy: Path, rep: int) -> dict[str, str]:
        # A fresh relay cache per copy: every cold build starts empty.
        return {"RELAY_CACHE_DIR": str(copy.parent / "relay-cache")}

    def command(self, step: str, copy: Path) -> list[str]:
        return [str(self.binary), "build", *self.extra]

    def bundles(self, copy: Path) -> dict[str, str]:
        dist = copy / "dist"
        return {str(p.relative_to(dist)): sha256_file(p) for p in sorted(dist.rglob("*.zip"))}

    def versions(self) -> str:
        return _version([str(self.binary), "--version"])


@dataclass
class Sam(Tool):
    project: Project | None = None
    locks: dict[str, bytes] = field(default_factory=dict)

    def setup(self, copy: Path, rep: int) -> None:
        write_sam_inputs(self.project, copy, self.locks)

    def env(self, copy: Path, rep: int) -> dict[str, str]:
        return {"SAM_CLI_TELEMETRY": "0"}

    def command(self, step: str, copy: Path) -> list[str]:
        sam = [str(SAM_VENV / "bin" / "sam"), "build", "--template-file", "template.yaml"]
        return sam if step == "cold" else [*sam, "--cached"]

    def bundles(self, copy: Path) -> dict[str, str]:
        # `sam build` leaves folders; zip them with SAM's own zipper, as
        # `sam package`/`sam deploy` would upload them (not timed).
        build = copy / ".aws-sam" / "build"
        out = copy.parent / "sam-zips"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        folders = sorted(p for p in build.iterdir() if p.is_dir())
        script = (
            "import sys\n"
            "from samcli.lib.package.utils import make_zip_with_lambda_permissions as z\n"
            "for src in sys.argv[2:]:\n"
            "    z(sys.argv[1] + '/' + src.rsplit('/', 1)[1], src)\n"
        )
        subprocess.run([str(SAM_VENV / "bin" / "python"), "-c", script, str(out), *map(str, folders)],
                       check=True, capture_output=True)
        return {p.name: sha256_file(p) for p in sorted(out.glob("*.zip"))}

    def versions(self) -> str:
        return _version([str(SAM_VENV / "bin" / "sam"), "--version"])


@dataclass
class PipZip(Tool):
    project: Project | None = None
    locks: dict[str, bytes] = field(default_factory=dict)

    def setup(self, copy: Path, rep: int) -> None:
        (copy / "build.sh").write_text(pip_zip_script(self.project, self.locks), encoding="utf-8")

    def command(self, step: str, copy: Path) -> list[str]:
        return ["bash", "build.sh"]

    def bundles(self, copy: Path) -> dict[str, str]:
        return {p.name: sha256_file(p) for p in sorted((copy / "build").glob("*.zip"))}

    def versions(self) -> str:
        return _version([sys.executable, "-m", "pip", "--version"]).split(" from ")[0] + " + " + \
            _version(["zip", "-v"]).splitlines()[1].strip()


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (proc.stdout or proc.stderr).strip() or "unavailable"


# --------------------------------------------------------------------------- SAM inputs


def _logical_id(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in part.replace("-", "_").split("_") if p)


def layer_logical_id(layer: str, arch: str) -> str:
    return _logical_id(layer, "layer", "arm64" if arch == "arm64" else "x86")


def layer_architectures(project: Project) -> dict[str, list[str]]:
    """Each layer is built once per architecture of the functions using it (compiled wheels differ)."""
    return {
        name: sorted({fn.architecture for fn in project.functions.values() if name in fn.layers}
                     or {project.architecture})
        for name in project.layers
    }


def sam_template(project: Project) -> dict:
    """A SAM template equivalent to relay.toml: same functions, handlers, archs, env, layers."""
    resources: dict[str, dict] = {}
    for name, archs in layer_architectures(project).items():
        for arch in archs:
            resources[layer_logical_id(name, arch)] = {
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {
                    "LayerName": f"{project.name}-{name}-{arch}",
                    "ContentUri": f".sam-layers/{name}",
                    "CompatibleRuntimes": [project.runtime],
                    "CompatibleArchitectures": [arch],
                },
                "Metadata": {"BuildMethod": project.runtime, "BuildArchitecture": arch},
            }
    for fn in project.functions.values():
        properties = {
            "CodeUri": str(fn.source.relative_to(project.root)),
            "Handler": fn.handler,
            "Runtime": project.runtime,
            "Architectures": [fn.architecture],
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Layers": [{"Ref": layer_logical_id(layer, fn.architecture)} for layer in fn.layers],
        }
        if fn.environment:
            properties["Environment"] = {"Variables": dict(fn.environment)}
        resources[_logical_id(fn.name, "function")] = {"Type": "AWS::Serverless::Function", "Properties": properties}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31",
            "Resources": resources}


def write_sam_inputs(project: Project, copy: Path, locks: dict[str, bytes]) -> None:
    """template.yaml, and a staging folder per layer.

    SAM builds a layer from one folder holding requirements.txt; it has no
    notion of local packages from elsewhere (libs/shared), so those are copied
    in next to the layer's lock, where SAM puts them under python/.
    """
    text = "# Generated by bench/build_bench.py from relay.toml (JSON is valid YAML).\n"
    (copy / "template.yaml").write_text(text + json.dumps(sam_template(project), indent=2) + "\n", encoding="utf-8")
    for layer in project.layers.values():
        staging = copy / ".sam-layers" / layer.name
        staging.mkdir(parents=True)
        if layer.requirements:
            rel = str(layer.requirements.relative_to(project.root).with_suffix(".txt"))
            (staging / "requirements.txt").write_bytes(locks[rel])
        for folder in layer.packages:
            for package in importable_packages(copy / folder.relative_to(project.root)):
                shutil.copytree(package, staging / package.name, copy_function=shutil.copy,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def importable_packages(folder: Path) -> list[Path]:
    """The package folders inside a local package folder (itself, or its children; src/ layout too)."""
    if (folder / "__init__.py").is_file():
        return [folder]
    base = folder / "src" if (folder / "src").is_dir() else folder
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


# --------------------------------------------------------------------------- pip + zip


def pip_zip_script(project: Project, locks: dict[str, bytes]) -> str:
    """The shell script a hand-made pipeline would run: pip install -t, copy, zip -r."""
    pip = f'"{sys.executable}" -m pip install --quiet --disable-pip-version-check'
    lines = ["#!/bin/bash", "# Generated by bench/build_bench.py: a typical hand-made Lambda build.",
             "set -euo pipefail", "rm -rf build && mkdir build"]

    def install(lock_rel: str | None, target: str, arch: str) -> list[str]:
        if not lock_rel or lock_is_empty(locks[lock_rel]):
            return []
        machine = "aarch64" if arch == "arm64" else "x86_64"
        return [f"{pip} -r {lock_rel} --target {target} --platform manylinux2014_{machine} "
                f"--implementation cp --python-version {project.python_version} --only-binary=:all:"]

    def lock_of(requirements: Path | None) -> str | None:
        return str(requirements.relative_to(project.root).with_suffix(".txt")) if requirements else None

    for name, archs in layer_architectures(project).items():
        layer = project.layers[name]
        for arch in archs:
            out = f"build/{name}-{arch}"
            lines += [f"# layer {name} ({arch})", f"mkdir -p {out}/python"]
            lines += install(lock_of(layer.requirements), f"{out}/python", arch)
            for folder in layer.packages:
                for package in importable_packages(folder):
                    lines.append(f"cp -r {package.relative_to(project.root)} {out}/python/")
            lines.append(f"(cd {out} && zip -q -r ../{name}-{arch}.zip python)")
    for fn in project.functions.values():
        out = f"build/{fn.name}"
        lines += [f"# function {fn.name} ({fn.architecture})", f"mkdir -p {out}"]
        lines += install(lock_of(fn.requirements), out, fn.architecture)
        lines += [f"cp -r {fn.source.relative_to(project.root)}/. {out}/", f"(cd {out} && zip -q -r ../{fn.name}.zip .)"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SAM venv


def ensure_sam(runner: Runner) -> None:
    """bench/.venv-sam with aws-sam-cli pinned, created on first use."""
    sam = SAM_VENV / "bin" / "sam"
    if sam.exists() and SAM_VERSION in _version([str(sam), "--version"]):
        return
    print(f"creating {SAM_VENV.relative_to(REPO)} with aws-sam-cli=={SAM_VERSION} (once) ...", file=sys.stderr)
    if not (SAM_VENV / "bin" / "python").exists():
        runner.run("sam-venv", [sys.executable, "-m", "venv", str(SAM_VENV)], cwd=BENCH)
    runner.run("sam-install", [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               f"aws-sam-cli=={SAM_VERSION}"], cwd=BENCH)


def python_for_runtime(version: str) -> Path | None:
    """The folder holding a working pythonX.Y: SAM's python builder runs the runtime's Python from PATH.

    A pyenv shim named python3.12 sits on PATH but fails unless that version is
    selected, so each candidate is run before it is trusted.
    """
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")),
                         reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return Path(candidate).parent
    return None


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Outcome:
    times: dict[str, list[float]] = field(default_factory=dict)
    cold_bundles: list[dict[str, str]] = field(default_factory=list)
    edit_changed: list[list[str]] = field(default_factory=list)
    noop_changed: list[list[str]] = field(default_factory=list)
    variants: list[dict] = field(default_factory=list)
    error: str | None = None


def run_tool_once(tool: Tool, runner: Runner, project: Project, locks: dict[str, bytes], folder: Path,
                  rep: int, outcome: Outcome | None) -> None:
    """Every step of one tool on one fresh copy; record into `outcome` (None: warm-up)."""
    variant = VARIANTS[rep % len(VARIANTS)]
    copy = fresh_copy(folder / "shop", locks)
    tool.setup(copy, rep)
    env = {**tool.env(copy, rep), "TZ": variant["tz"]}
    tag = "warmup" if outcome is None else f"rep{rep + 1}"
    before: dict[str, str] = {}
    for step in tool.steps:
        if outcome is None and step != "cold":
            break  # the warm-up only fills pip's cache
        if step == "one_function":
            edit_function(copy, project)
        seconds = runner.run(f"{tool.name}-{tag}-{step}", tool.command(step, copy), cwd=copy, env=env,
                             umask=variant["umask"])
        if outcome is None:
            continue
        outcome.times.setdefault(step, []).append(seconds)
        after = tool.bundles(copy)
        if step == "cold":
            outcome.cold_bundles.append(after)
            outcome.variants.append({"folder": str(copy), "umask": f"{variant['umask']:04o}", "tz": variant["tz"]})
        elif step == "noop":
            outcome.noop_changed.append(changed(before, after))
        elif step == "one_function":
            outcome.edit_changed.append(changed(before, after))
        before = after


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


def identical(runs: list[dict[str, str]]) -> dict:
    """Whether every cold build gave the same zip for every bundle."""
    if len(runs) < 2:
        return {"identical": None, "differing": [], "note": "needs --repeat >= 2"}
    names = sorted(set().union(*runs))
    differing = [n for n in names if len({run.get(n) for run in runs}) > 1]
    return {"identical": not differing, "differing": differing, "bundles": len(names)}


def medians(outcome: Outcome) -> dict[str, float]:
    return {step: statistics.median(values) for step, values in outcome.times.items()}


def ratios(med: dict[str, dict[str, float]]) -> dict[str, float | None]:
    def ratio(tool_a: str, step_a: str, tool_b: str, step_b: str) -> float | None:
        a, b = med.get(tool_a, {}).get(step_a), med.get(tool_b, {}).get(step_b)
        return round(a / b, 3) if a is not None and b else None

    return {
        "cold relay/sam": ratio("relay", "cold", "sam", "cold"),
        "no-op relay/sam --cached": ratio("relay", "noop", "sam", "noop"),
        "one-function relay/sam --cached": ratio("relay", "one_function", "sam", "one_function"),
        "cold relay/pip": ratio("relay", "cold", "pip", "cold"),
        "no-op relay/pip (pip always rebuilds all)": ratio("relay", "noop", "pip", "cold"),
        "one-function relay/pip (pip always rebuilds all)": ratio("relay", "one_function", "pip", "cold"),
    }


TARGETS = {"cold relay/sam": 0.5, "no-op relay/sam --cached": 0.15}
STEP_TITLES = {
    "cold": "cold build",
    "cold_cached": "cold build, --cached (fills SAM's cache)",
    "noop": "no-op rebuild",
    "one_function": f"one-function rebuild ({EDITED_FUNCTION} edited)",
}


def render(tools: list[Tool], outcomes: dict[str, Outcome], med: dict[str, dict[str, float]],
           rat: dict[str, float | None], repro: dict[str, dict]) -> str:
    names = [t.name for t in tools]
    header = f"{'median seconds':<44}" + "".join(f"{t.label:>16}" for t in tools)
    lines = [header, "-" * len(header)]
    for step, title in STEP_TITLES.items():
        cells = [f"{med[n][step]:>14.2f} s" if step in med.get(n, {}) else f"{'-':>16}" for n in names]
        if any(c.strip() != "-" for c in cells):
            lines.append(f"{title:<44}" + "".join(cells))
    cells = []
    for n in names:
        r = repro.get(n, {})
        cells.append(f"{'FAILED' if outcomes[n].error else {True: 'yes', False: 'NO', None: 'n/a'}[r.get('identical')]:>16}")
    lines.append(f"{'identical zips, two cold builds':<44}" + "".join(cells))
    lines += ["", f"{'ratio':<48}{'value':>8}{'target':>10}"]
    for key, value in rat.items():
        target = TARGETS.get(key)
        verdict = "" if value is None or target is None else ("  ok" if value <= target else "  MISSED")
        shown = f"{value:>8.3f}" if value is not None else f"{'n/a':>8}"
        lines.append(f"{key:<48}{shown}{('<= ' + str(target)) if target else '':>10}{verdict}")
    for n in names:
        o = outcomes[n]
        if o.edit_changed:
            lines.append(f"{n}: bundles changed by the one-function rebuild: {', '.join(o.edit_changed[-1]) or 'none'}")
        if any(o.noop_changed):
            lines.append(f"{n}: the no-op rebuild changed: {', '.join(o.noop_changed[-1])}")
        if repro.get(n, {}).get("differing"):
            lines.append(f"{n}: cold builds differ in: {', '.join(repro[n]['differing'])}")
        if o.error:
            lines.append(f"{n}: FAILED: {o.error.splitlines()[0]}")
    return "\n".join(lines)


def results_path(now: dt.datetime) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{now:%Y-%m-%d}.json"
    n = 2
    while path.exists():
        path = RESULTS / f"{now:%Y-%m-%d}-{n}.json"
        n += 1
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported (default 3)")
    parser.add_argument("--tools", default="relay,sam,pip", help="comma-separated subset of relay,sam,pip")
    parser.add_argument("--relay", type=Path, default=Path(sys.executable).parent / "relay",
                        help="the relay executable (default: next to this Python)")
    parser.add_argument("--relay-args", default="", help="extra arguments for `relay build`, e.g. \"--jobs 2\"")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured run that warms pip's cache")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (copies, logs) for inspection")
    parser.add_argument("--json-out", type=Path, help="where to write the JSON (default bench/results/<date>.json)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    project = load_project(EXAMPLE / "relay.toml")
    work = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    (work / "logs").mkdir()
    py_dir = python_for_runtime(project.python_version)
    base_env = {k: v for k, v in os.environ.items() if k not in ("RELAY_CACHE_DIR", "SOURCE_DATE_EPOCH")}
    # One PATH for all three tools, with the runtime's Python first (SAM needs it; relay finds it anyway).
    base_env["PATH"] = os.pathsep.join([str(py_dir)] if py_dir else []) + os.pathsep + base_env.get("PATH", "")
    runner = Runner(work / "logs", base_env)
    try:
        return _bench(args, project, work, runner, py_dir)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, project: Project, work: Path, runner: Runner, py_dir: Path | None) -> int:
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        # Other work competes for the CPUs: parallel builds suffer most, so ratios shift too.
        print(f"note: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs; timings will be noisy",
              file=sys.stderr)
    locks, lock_source = prepare_locks(project, runner, args.relay, work)
    wanted = [name.strip() for name in args.tools.split(",") if name.strip()]
    catalogue: dict[str, Tool] = {
        "relay": Relay("relay", "relay", ("cold", "noop", "one_function"), binary=args.relay,
                       extra=tuple(args.relay_args.split())),
        "sam": Sam("sam", "sam build", ("cold", "cold_cached", "noop", "one_function"), project=project, locks=locks),
        "pip": PipZip("pip", "pip+zip", ("cold",), project=project, locks=locks),
    }
    unknown = [name for name in wanted if name not in catalogue]
    if unknown:
        print(f"error: unknown tool(s) {', '.join(unknown)}; choose from relay, sam, pip", file=sys.stderr)
        return 2
    tools = [catalogue[name] for name in wanted]
    outcomes = {t.name: Outcome() for t in tools}
    if "sam" in wanted:
        try:
            if py_dir is None:
                raise ToolFailed(f"no python{project.python_version} found on PATH or in ~/.pyenv/versions")
            ensure_sam(runner)
        except ToolFailed as exc:
            outcomes["sam"].error = str(exc)

    def attempt(tool: Tool, folder: Path, rep: int, outcome: Outcome | None) -> None:
        record = outcomes[tool.name]
        if record.error:
            return
        try:
            run_tool_once(tool, runner, project, locks, folder, rep, outcome)
        except ToolFailed as exc:
            record.error = str(exc)
            print(f"{tool.name}: FAILED, going on with the other tools:\n{exc}", file=sys.stderr)

    if not args.no_warmup:
        for tool in tools:
            print(f"warm-up: {tool.label} (unmeasured, fills pip's cache)", file=sys.stderr)
            attempt(tool, work / f"warmup-{tool.name}", 0, None)
    for rep in range(args.repeat):
        # Tools take turns within a repetition, so a slow spell on the machine hits all of them.
        for tool in tools:
            print(f"run {rep + 1}/{args.repeat}: {tool.label}", file=sys.stderr)
            attempt(tool, work / f"rep{rep + 1}-{tool.name}", rep, outcomes[tool.name])

    med = {name: medians(o) for name, o in outcomes.items()}
    rat = ratios(med)
    repro = {name: identical(o.cold_bundles) for name, o in outcomes.items()}
    print(render(tools, outcomes, med, rat, repro))
    now = dt.datetime.now(dt.UTC)
    document = {
        "date": now.isoformat(timespec="seconds"),
        "example": str(EXAMPLE.relative_to(REPO)),
        "repeat": args.repeat,
        "warmup": not args.no_warmup,
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "runtime_python": str(py_dir) if py_dir else None,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "locks": lock_source,
        "caches": {
            "warm": "pip's own cache (~/.cache/pip: HTTP responses and wheels), shared by all three tools "
                    "and warmed by an unmeasured run of each tool first" if not args.no_warmup else
                    "pip's own cache (~/.cache/pip), shared by all three tools, as it was",
            "cold": "relay's caches (RELAY_CACHE_DIR: build cache, wheel cache) are empty at each cold build; "
                    "SAM's .aws-sam (build and --cached cache) is absent at each cold build",
        },
        "variants": "cold build N runs with umask/TZ " + ", ".join(f"{v['umask']:04o}/{v['tz']}" for v in VARIANTS)
                    + " alternating, each in a new folder with new file mtimes",
        "tools": {
            t.name: {
                "label": t.label,
                "version": t.versions(),
                "commands": {step: " ".join(t.command(step, Path("."))) for step in t.steps},
                "seconds": outcomes[t.name].times,
                "median_seconds": med[t.name],
                "cold_bundles": outcomes[t.name].cold_bundles,
                "cold_variants": outcomes[t.name].variants,
                "reproducible": repro[t.name],
                "changed_by_noop": outcomes[t.name].noop_changed,
                "changed_by_one_function_edit": outcomes[t.name].edit_changed,
                "error": outcomes[t.name].error,
            }
            for t in tools
        },
        "ratios": rat,
        "targets": TARGETS,
    }
    out = args.json_out or results_path(now)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
    return 1 if all(o.error for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
