"""What the build benchmarks share: running timed commands, SAM's venv, digests, medians, results.

`build_bench.py` (examples/shop) and `realapp_bench.py` (a generated real-world
app, and a scaling run) both time tools taking turns in one run; this module
holds the parts that do not depend on which app is built.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
SAM_VENV = BENCH / ".venv-sam"
SAM_VERSION = "1.170.0"
SAM_ZIP = BENCH / "sam_zip.py"
COMMAND_TIMEOUT = 1800

# Build N runs under the Nth variant, so two consecutive cold builds differ in
# everything that must not matter: folder, umask, TZ and file mtimes (fresh copy).
VARIANTS: tuple[dict[str, Any], ...] = ({"umask": 0o022, "tz": "UTC"}, {"umask": 0o002, "tz": "Asia/Tokyo"})


class ToolFailed(Exception):
    """A tool's command failed; the benchmark goes on with the other tools."""


@dataclass
class Runner:
    """Runs timed commands, keeping each one's output in a log file."""

    logs: Path
    base_env: dict[str, str]
    last_cpu: float = 0.0  # CPU seconds (user + system) of the last command and every process it waited for

    def run(self, label: str, cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
            umask: int = 0o022) -> float:
        log = self.logs / f"{label}.log"
        # Unmeasured: what earlier commands wrote reaches the disk first, so no command pays (in slower
        # file creation) for the previous tool's deferred writes; on this VM that varied a cold build 4-8 s.
        os.sync()
        cpu_before = children_cpu()
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
        self.last_cpu = children_cpu() - cpu_before
        if proc.returncode != 0:
            raise ToolFailed(f"{label}: `{' '.join(cmd[:3])} ...` exited {proc.returncode}\n{tail(log)}")
        return elapsed


def children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far (and of their waited-for children).

    Commands run one at a time, so the difference around one command is its CPU,
    threads and worker processes included: CPU / wall shows how much of the
    machine a tool used.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tail(log: Path, lines: int = 12) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    useful = [line for line in text if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join("    | " + line for line in useful[-lines:])


def bench_env(runtime_python: Path | None) -> dict[str, str]:
    """The environment every tool runs in: one PATH for all, with the runtime's Python first.

    SAM's Python builder runs pip with the runtime's interpreter from PATH;
    relay finds it anyway. No inherited relay cache or SOURCE_DATE_EPOCH, and no
    PYTHONDONTWRITEBYTECODE (this machine sets it): every tool keeps its own bytecode
    as it would on a developer's machine or a CI runner, so none compiles its own
    modules at every run (relay, installed editable, did after each change to it).
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("RELAY_CACHE_DIR", "SOURCE_DATE_EPOCH", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = os.pathsep.join([str(runtime_python)] if runtime_python else []) + os.pathsep + env.get("PATH", "")
    return env


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (proc.stdout or proc.stderr).strip() or "unavailable"


def pip_zip_version() -> str:
    return version([sys.executable, "-m", "pip", "--version"]).split(" from ")[0] + " + " + \
        version(["zip", "-v"]).splitlines()[1].strip()


def warn_if_loaded() -> tuple[float, float, float]:
    """The load average before a run; a note on stderr when other work competes for the CPUs."""
    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1):
        # Parallel builds suffer most from competing work, so ratios shift too.
        print(f"note: load average {load[0]:.1f} on {os.cpu_count()} CPUs; timings will be noisy", file=sys.stderr)
    return load


# --------------------------------------------------------------------------- SAM


def ensure_sam(runner: Runner) -> None:
    """bench/.venv-sam with aws-sam-cli pinned, created on first use."""
    sam = SAM_VENV / "bin" / "sam"
    if sam.exists() and SAM_VERSION in version([str(sam), "--version"]):
        return
    print(f"creating {SAM_VENV.relative_to(REPO)} with aws-sam-cli=={SAM_VERSION} (once) ...", file=sys.stderr)
    if not (SAM_VENV / "bin" / "python").exists():
        runner.run("sam-venv", [sys.executable, "-m", "venv", str(SAM_VENV)], cwd=BENCH)
    runner.run("sam-install", [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               f"aws-sam-cli=={SAM_VERSION}"], cwd=BENCH)


def sam_command(cached: bool) -> list[str]:
    sam = [str(SAM_VENV / "bin" / "sam"), "build", "--template-file", "template.yaml"]
    return [*sam, "--cached"] if cached else sam


def sam_version() -> str:
    return version([str(SAM_VENV / "bin" / "sam"), "--version"])


def sam_bundles(copy: Path) -> dict[str, str]:
    """Bundle name -> sha256, for what `sam build` left in .aws-sam/build.

    `sam build` leaves folders; they are zipped with SAM's own zipper, as `sam
    package`/`sam deploy` would upload them (not timed).
    """
    build = copy / ".aws-sam" / "build"
    out = copy.parent / "sam-zips"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    folders = sorted(p for p in build.iterdir() if p.is_dir())
    subprocess.run([str(SAM_VENV / "bin" / "python"), str(SAM_ZIP), str(out), *map(str, folders)],
                   check=True, capture_output=True)
    return zip_digests(out)


def python_for_runtime(version_: str) -> Path | None:
    """The folder holding a working pythonX.Y: SAM's python builder runs the runtime's Python from PATH.

    A pyenv shim named python3.12 sits on PATH but fails unless that version is
    selected, so each candidate is run before it is trusted.
    """
    candidates = [shutil.which(f"python{version_}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version_}.*/bin/python{version_}")),
                         reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version_:
            return Path(candidate).parent
    return None


# --------------------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """One tool's record over every repetition: seconds per step, bundle digests, what changed."""

    times: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds per step, as `times`
    cold_bundles: list[dict[str, str]] = field(default_factory=list)
    edit_changed: list[list[str]] = field(default_factory=list)
    noop_changed: list[list[str]] = field(default_factory=list)
    bump_changed: list[list[str]] = field(default_factory=list)
    variants: list[dict] = field(default_factory=list)
    error: str | None = None


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


def cpu_medians(outcome: Outcome) -> dict[str, float]:
    return {step: round(statistics.median(values), 3) for step, values in outcome.cpu.items()}


def ratio(med: dict[str, dict[str, float]], tool_a: str, step_a: str, tool_b: str, step_b: str) -> float | None:
    """median(tool_a, step_a) / median(tool_b, step_b), or None when either is missing."""
    a, b = med.get(tool_a, {}).get(step_a), med.get(tool_b, {}).get(step_b)
    return round(a / b, 3) if a is not None and b else None


def ratio_lines(rat: dict[str, float | None], targets: dict[str, float]) -> list[str]:
    lines = [f"{'ratio':<56}{'value':>8}{'target':>10}"]
    for key, value in rat.items():
        target = targets.get(key)
        verdict = "" if value is None or target is None else ("  ok" if value <= target else "  MISSED")
        shown = f"{value:>8.3f}" if value is not None else f"{'n/a':>8}"
        lines.append(f"{key:<56}{shown}{('<= ' + str(target)) if target else '':>10}{verdict}")
    return lines


def results_path(now: dt.datetime, stem: str = "") -> Path:
    """bench/results/<stem><date>.json, with -2, -3... when that day's file exists."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stem}{now:%Y-%m-%d}.json"
    n = 2
    while path.exists():
        path = RESULTS / f"{stem}{now:%Y-%m-%d}-{n}.json"
        n += 1
    return path


def zip_digests(folder: Path) -> dict[str, str]:
    """sha256 of every zip under `folder`, by its path relative to it: what two builds are compared by."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*.zip"))}
