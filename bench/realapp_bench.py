"""Real-app build benchmark: relay vs `sam build` vs `pip install -t` + zip, with the physical floor.

Run with relay's venv (`.venv/bin/python bench/realapp_bench.py`). Two parts, tools taking turns
within each repetition:

  app    bench/fixtures/realapp, copied into a temp folder: one package `product/` shared by five
         handlers, pyproject.toml + uv.lock, a `common` layer (pydantic, aws-lambda-powertools,
         boto3), python3.13 x86_64, with docs/, tests/, infrastructure/, a .gitignore, a git
         history, and git-ignored clutter (.venv/, cdk.out/, a log). Steps: cold build, no-op,
         one handler edited, layer lock bumped (boto3/botocore one release newer).
  scale  N small functions (1, 5, 20, 50) sharing the same layer: cold build and no-op.

Next to relay's figures, the floor: decompress the layer's wheels and deflate every member at
level 6 in Python (plus the functions' code), timed in-process. Relay's cold build starts with its
downloads cached (the warm-up's, as pip's cache is for SAM and pip); relay-nocache's with nothing.
Medians, ratios and whether cold builds gave identical zips go to a table on stdout and to
bench/results/realapp-<date>.json.
See bench/README.md, "Real-app benchmark".
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BENCH,
    VARIANTS,
    Outcome,
    Runner,
    ToolFailed,
    bench_env,
    changed,
    cpu_medians,
    ensure_sam,
    identical,
    medians,
    pip_zip_version,
    python_for_runtime,
    ratio,
    ratio_lines,
    results_path,
    sam_bundles,
    sam_command,
    sam_version,
    sha256_file,
    version,
    warn_if_loaded,
    zip_digests,
)

FIXTURES = BENCH / "fixtures"
REALAPP = FIXTURES / "realapp"  # the app's tree, its pyproject.toml, uv.lock and uv.bumped.lock
SCALE_HANDLER = FIXTURES / "scaleapp" / "app.py"  # the scale run's function, FUNCTION_NAME filled in
BUMPED_LOCK = "uv.bumped.lock"  # uv.lock with boto3 + botocore one release newer: the "layer lock bumped" step
BUMPED_PACKAGES = ("boto3", "botocore")
RUNTIME = "python3.13"
PYTHON = "3.13"
ARCH = "x86_64"
WHEEL_PLATFORM = "manylinux2014_x86_64"
HANDLERS = ("create", "get", "list", "update", "delete")
EDITED = "product/handlers/create.py"
LAYER_DIR = "layers/common"  # the layer's exported requirements (SAM, pip, relay's legacy layout)
LAYOUTS = ("packages", "legacy")
STEPS = ("cold", "cold_cached", "noop", "edit", "bump")
SCALE_STEPS = ("cold", "cold_cached", "noop")
VENV_PACKAGES = 40  # git-ignored .venv/ clutter: packages x modules small files
VENV_MODULES = 30
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"]

# The legacy layout: what relay accepts before issue 9 (source = "." + exclude + a requirements.in
# exported from uv.lock). Everything but product/ has to be named.
LEGACY_EXCLUDE = ("docs", "tests", "infrastructure", "layers", ".github", ".venv", "cdk.out", "dist", ".relay",
                  "*.log", ".coverage", ".gitignore", "pyproject.toml", "uv.lock", "README.md", "relay.toml")


# --------------------------------------------------------------------------- the apps


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    code: str  # relay's source / SAM's CodeUri, relative to the app root
    ships: str  # the folder whose files a function zip holds (relative to the app root)
    prefix: str  # where those files go in the zip


@dataclass
class App:
    """One generated app: its files (relative path -> bytes), functions, and the pins of each lock set."""

    key: str  # "realapp" or "scale-N"
    name: str  # the app's name in relay.toml and template.yaml
    tree: dict[str, bytes]
    functions: tuple[Function, ...]
    pins: dict[str, dict[str, bytes]]  # "base"/"bumped" -> uv.lock, requirements.txt (hashed), requirements.in
    steps: tuple[str, ...]
    packages_layout: bool = True  # relay's `packages = ["product"]` (else each function's own folder as source)


def fixture_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.name != BUMPED_LOCK}


def clutter() -> dict[str, bytes]:
    """What a developer's checkout holds and git ignores: a .venv, cdk.out, a log, a coverage file."""
    files = {".venv/pyvenv.cfg": f"home = /usr/bin\nversion_info = {PYTHON}.0\n".encode()}
    for p in range(VENV_PACKAGES):
        for m in range(VENV_MODULES):
            files[f".venv/lib/python{PYTHON}/site-packages/pkg{p:02d}/mod{m:02d}.py"] = f"VALUE = {p * m}\n".encode()
    files["cdk.out/manifest.json"] = b'{"version": "41.0.0"}\n'
    files["cdk.out/products.template.json"] = json.dumps({"Resources": {}}).encode()
    files["product/handlers/debug.log"] = b"2026-11-20 DEBUG local run\n" * 200
    files[".coverage"] = b"SQLite format 3\x00" + bytes(4096)
    return files


def uv_export(uv_lock: bytes, pyproject: bytes, hashes: bool, runner: Runner, work: Path, label: str) -> bytes:
    """The layer's requirements from a uv.lock, as `uv export` writes them (what a SAM user commits)."""
    scratch = work / f"export-{label}"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "pyproject.toml").write_bytes(pyproject)
    (scratch / "uv.lock").write_bytes(uv_lock)
    cmd = [str(Path(sys.executable).parent / "uv"), "export", "--frozen", "--no-emit-project", "--no-dev",
           "--format", "requirements-txt", "--output-file", "requirements.txt"]
    runner.run(f"uv-export-{label}", [*cmd, *([] if hashes else ["--no-hashes"])], cwd=scratch)
    return (scratch / "requirements.txt").read_bytes()


def pin_sets(runner: Runner, work: Path) -> dict[str, dict[str, bytes]]:
    pyproject = (REALAPP / "pyproject.toml").read_bytes()
    sets = {}
    for name, lock in (("base", REALAPP / "uv.lock"), ("bumped", REALAPP / BUMPED_LOCK)):
        data = lock.read_bytes()
        sets[name] = {"uv.lock": data,
                      "requirements.txt": uv_export(data, pyproject, True, runner, work, f"{name}-hashed"),
                      "requirements.in": uv_export(data, pyproject, False, runner, work, name)}
    return sets


def realapp(pins: dict[str, dict[str, bytes]]) -> App:
    functions = tuple(Function(h, f"product.handlers.{h}.handler", ".", "product", "product/") for h in HANDLERS)
    return App("realapp", "products", {**fixture_tree(REALAPP), **clutter()}, functions, pins, STEPS)


def scale_app(n: int, pins: dict[str, dict[str, bytes]]) -> App:
    """N small functions, each its own folder, sharing the common layer."""
    template = SCALE_HANDLER.read_text(encoding="utf-8")
    tree = {name: (REALAPP / name).read_bytes() for name in ("pyproject.toml", "uv.lock", ".gitignore")}
    functions = []
    for i in range(1, n + 1):
        name = f"f{i:02d}"
        tree[f"functions/{name}/app.py"] = template.replace("FUNCTION_NAME", name).encode()
        functions.append(Function(name, "app.lambda_handler", f"functions/{name}", f"functions/{name}", ""))
    return App(f"scale-{n}", f"scale{n}", tree, tuple(functions), pins, SCALE_STEPS, packages_layout=False)


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def git_commit_all(copy: Path) -> None:
    """A git history like a real checkout's; the git-ignored clutter stays untracked."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "products app"]):
        subprocess.run([*GIT, *args], cwd=copy, check=True, capture_output=True)


def edit_handler(copy: Path) -> None:
    """A real source change to one handler, as a developer would make."""
    with open(copy / EDITED, "a", encoding="utf-8") as fh:
        fh.write(f"\n# benchmark edit {time.time_ns()}\n")


# --------------------------------------------------------------------------- relay.toml, template.yaml, build.sh


def relay_toml(app: App, layout: str) -> str:
    lines = ['# Generated by bench/realapp_bench.py', "[app]", f'name = "{app.name}"', f'runtime = "{RUNTIME}"',
             f'architecture = "{ARCH}"']
    if layout == "legacy" and app.packages_layout:
        lines.append("exclude = [" + ", ".join(f'"{p}"' for p in LEGACY_EXCLUDE) + "]")
    lines += ["", "[layers.common]", 'description = "pydantic, Powertools and boto3, pinned by uv.lock"']
    if layout == "legacy":
        lines.append(f'requirements = "{LAYER_DIR}/requirements.in"')
    else:
        lines += ['requirements = "pyproject.toml"', 'pins = "uv.lock"']
    for fn in app.functions:
        lines += ["", f"[functions.{fn.name}]", f'handler = "{fn.handler}"', 'layers = ["common"]']
        if app.packages_layout and layout == "packages":
            lines.append(f'packages = ["{fn.ships}"]')
        else:
            lines.append(f'source = "{fn.code}"')
    return "\n".join(lines) + "\n"


def _logical_id(name: str) -> str:
    return name[:1].upper() + name[1:]


def sam_template(app: App) -> str:
    """The same app for SAM: one LayerVersion built by SAM's python builder, functions with CodeUri."""
    resources: dict[str, dict] = {
        "CommonLayer": {
            "Type": "AWS::Serverless::LayerVersion",
            "Properties": {"LayerName": f"{app.name}-common", "ContentUri": LAYER_DIR,
                           "CompatibleRuntimes": [RUNTIME], "CompatibleArchitectures": [ARCH]},
            "Metadata": {"BuildMethod": RUNTIME, "BuildArchitecture": ARCH},
        },
    }
    for fn in app.functions:
        resources[_logical_id(fn.name) + "Function"] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": fn.code, "Handler": fn.handler, "Runtime": RUNTIME, "Architectures": [ARCH],
                           "MemorySize": 256, "Timeout": 10, "Layers": [{"Ref": "CommonLayer"}]},
        }
    document = {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31",
                "Resources": resources}
    return "# Generated by bench/realapp_bench.py (JSON is valid YAML).\n" + json.dumps(document, indent=2) + "\n"


def pip_zip_script(app: App) -> str:
    """What a hand-made pipeline runs: pip install -t for the layer, copy each function's code, zip -r."""
    pip = (f'"{sys.executable}" -m pip install --quiet --disable-pip-version-check --platform {WHEEL_PLATFORM} '
           f"--implementation cp --python-version {PYTHON} --only-binary=:all:")
    lines = ["#!/bin/bash", "# Generated by bench/realapp_bench.py: a typical hand-made Lambda build.",
             "set -euo pipefail", "rm -rf out && mkdir out",
             f"{pip} -r {LAYER_DIR}/requirements.txt --target out/common/python",
             "(cd out/common && zip -q -r ../common.zip python)"]
    for fn in app.functions:
        target = f"out/{fn.name}/{fn.prefix}"
        lines += [f"mkdir -p {target}", f"cp -r {fn.ships}/. {target}",
                  f"(cd out/{fn.name} && zip -q -r ../{fn.name}.zip . -x '*/__pycache__/*' '*.log')"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """One build tool: which steps it takes, the files its copy holds, how a step runs, its bundles."""

    name: str
    label: str
    steps: tuple[str, ...]

    def prepare(self, app: App, runner: Runner, work: Path) -> None:
        """Unmeasured work once per app (relay's lock, the floor's wheels); raises ToolFailed."""

    def warmed(self, folder: Path) -> None:
        """After the unmeasured warm-up run in `folder` (what it left there may serve the measured runs)."""

    def files(self, app: App) -> dict[str, bytes]:
        return {**app.tree, "uv.lock": app.pins["base"]["uv.lock"]}

    def bump_files(self, app: App) -> dict[str, bytes]:
        return {"uv.lock": app.pins["bumped"]["uv.lock"]}

    def env(self, copy: Path) -> dict[str, str]:
        return {}

    def command(self, step: str, copy: Path) -> list[str]:
        raise NotImplementedError

    def measure(self, step: str, app: App, copy: Path, runner: Runner, label: str, env: dict[str, str],
                umask: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds) of one step."""
        wall = runner.run(label, self.command(step, copy), cwd=copy, env=env, umask=umask)
        return wall, runner.last_cpu

    def bundles(self, copy: Path) -> dict[str, str]:
        """Bundle name -> sha256 of its zip."""
        raise NotImplementedError

    def versions(self) -> str:
        return ""


@dataclass
class Relay(Tool):
    """relay build. Its cold build starts with an empty cache but for the wheels it downloaded in the warm-up
    (`downloads`), as SAM's and pip's start with pip's warm cache; with `no_cache`, with nothing at all."""

    binary: Path = Path()
    extra: tuple[str, ...] = ()
    layout: str = "packages"
    no_cache: bool = False
    locks: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)  # app key -> pin set -> files
    pins_check: dict[str, dict] = field(default_factory=dict)  # app key -> relay's locked versions vs uv.lock
    downloads: Path | None = None  # the warm-up's wheel cache (RELAY_CACHE_DIR/wheels)

    def prepare(self, app: App, runner: Runner, work: Path) -> None:
        """`relay lock` once per pin set in a scratch copy; every copy then gets the files it wrote."""
        self.locks[app.key] = {}
        for pins in ("base", "bumped"):
            scratch = work / f"{self.name}-lock-{app.key}-{pins}"
            files = self._own_files(app, pins)
            write_files(scratch, files)
            before = snapshot(scratch)
            runner.run(f"{self.name}-lock-{app.key}-{pins}", [str(self.binary), "lock"], cwd=scratch,
                       env={"RELAY_CACHE_DIR": str(work / "relay-lock-cache")})
            after = snapshot(scratch)
            self.locks[app.key][pins] = {rel: (scratch / rel).read_bytes() for rel in changed(before, after)
                                         if rel in after}
        self.pins_check[app.key] = compare_pins(self.locks[app.key]["base"], app.pins["base"]["uv.lock"])

    def _own_files(self, app: App, pins: str) -> dict[str, bytes]:
        own = {**app.tree, "uv.lock": app.pins[pins]["uv.lock"], "relay.toml": relay_toml(app, self.layout).encode()}
        if self.layout == "legacy":
            own[f"{LAYER_DIR}/requirements.in"] = app.pins[pins]["requirements.in"]
        return own

    def files(self, app: App) -> dict[str, bytes]:
        return {**self._own_files(app, "base"), **self.locks[app.key]["base"]}

    def bump_files(self, app: App) -> dict[str, bytes]:
        bumped = {**self._own_files(app, "bumped"), **self.locks[app.key]["bumped"]}
        base = self.files(app)
        return {rel: data for rel, data in bumped.items() if base.get(rel) != data}

    def env(self, copy: Path) -> dict[str, str]:
        # A fresh relay cache per copy: every cold build starts empty (but for the downloads, `measure`).
        return {"RELAY_CACHE_DIR": str(self._cache(copy))}

    @staticmethod
    def _cache(copy: Path) -> Path:
        return copy.parent / "relay-cache"

    def warmed(self, folder: Path) -> None:
        wheels = folder / "relay-cache" / "wheels"
        if not self.no_cache and wheels.is_dir():
            self.downloads = wheels

    def measure(self, step: str, app: App, copy: Path, runner: Runner, label: str, env: dict[str, str],
                umask: int) -> tuple[float, float]:
        if step == "cold" and self.downloads is not None:  # linked, unmeasured: what pip's cache is to the others
            shutil.copytree(self.downloads, self._cache(copy) / "wheels", copy_function=os.link)
        return super().measure(step, app, copy, runner, label, env, umask)

    def command(self, step: str, copy: Path) -> list[str]:
        return [str(self.binary), "build", *self.extra]

    def bundles(self, copy: Path) -> dict[str, str]:
        return zip_digests(copy / "dist")

    def versions(self) -> str:
        return version([str(self.binary), "--version"])


@dataclass
class Sam(Tool):
    def files(self, app: App) -> dict[str, bytes]:
        return {**super().files(app), "template.yaml": sam_template(app).encode(),
                f"{LAYER_DIR}/requirements.txt": app.pins["base"]["requirements.txt"]}

    def bump_files(self, app: App) -> dict[str, bytes]:
        return {**super().bump_files(app), f"{LAYER_DIR}/requirements.txt": app.pins["bumped"]["requirements.txt"]}

    def env(self, copy: Path) -> dict[str, str]:
        return {"SAM_CLI_TELEMETRY": "0"}

    def command(self, step: str, copy: Path) -> list[str]:
        return sam_command(cached=step != "cold")

    def bundles(self, copy: Path) -> dict[str, str]:
        return sam_bundles(copy)

    def versions(self) -> str:
        return sam_version()


@dataclass
class PipZip(Tool):
    def files(self, app: App) -> dict[str, bytes]:
        return {**super().files(app), "build.sh": pip_zip_script(app).encode(),
                f"{LAYER_DIR}/requirements.txt": app.pins["base"]["requirements.txt"]}

    def command(self, step: str, copy: Path) -> list[str]:
        return ["bash", "build.sh"]

    def bundles(self, copy: Path) -> dict[str, str]:
        return zip_digests(copy / "out")

    def versions(self) -> str:
        return pip_zip_version()


@dataclass
class Floor(Tool):
    """The physical floor, timed in-process: decompress the layer's wheels and deflate every member
    at level 6 into one zip, plus each function's code into its zip. No resolution, no install
    logic, no import check, one thread."""

    wheels: dict[str, Path] = field(default_factory=dict)  # pin set -> folder of the layer's wheels

    def prepare(self, app: App, runner: Runner, work: Path) -> None:
        for pins in ("base", "bumped"):
            if pins in self.wheels:  # the same layer in every app of a run
                continue
            folder = work / f"floor-wheels-{pins}"
            folder.mkdir(parents=True)
            (folder / "requirements.txt").write_bytes(app.pins[pins]["requirements.txt"])
            runner.run(f"floor-download-{pins}", [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--implementation", "cp",
                "--python-version", PYTHON, "-r", "requirements.txt", "-d", "."], cwd=folder)
            self.wheels[pins] = folder

    def command(self, step: str, copy: Path) -> list[str]:
        return ["(in-process)", "decompress wheels + deflate level 6"]

    def measure(self, step: str, app: App, copy: Path, runner: Runner, label: str, env: dict[str, str],
                umask: int) -> tuple[float, float]:
        out = copy / "floor-out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        os.sync()  # as before every timed command (`Runner.run`)
        started, cpu = time.perf_counter(), time.process_time()
        floor_build(self.wheels["bumped" if step == "bump" else "base"], app, copy, out)
        return time.perf_counter() - started, time.process_time() - cpu

    def bundles(self, copy: Path) -> dict[str, str]:
        return zip_digests(copy / "floor-out")

    def versions(self) -> str:
        return f"Python {platform.python_version()}, zlib {zlib.ZLIB_RUNTIME_VERSION}"


def floor_build(wheels: Path, app: App, copy: Path, out: Path) -> None:
    stamp = (1980, 1, 1, 0, 0, 0)

    def add(z: zipfile.ZipFile, name: str, data: bytes) -> None:
        z.writestr(zipfile.ZipInfo(name, stamp), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)

    with zipfile.ZipFile(out / "common.zip", "w") as layer:
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as source:
                for info in source.infolist():
                    if not info.is_dir():
                        add(layer, "python/" + info.filename, source.read(info))
    for fn in app.functions:
        root = copy / fn.ships
        with zipfile.ZipFile(out / f"{fn.name}.zip", "w") as bundle:
            for path in sorted(root.rglob("*.py")):
                add(bundle, fn.prefix + str(path.relative_to(root)), path.read_bytes())


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file, but dist/ and .git/."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not {"dist", ".git", "__pycache__"} & set(p.relative_to(root).parts)}


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def compare_pins(lock_files: dict[str, bytes], uv_lock: bytes) -> dict:
    """relay's locked versions against uv.lock's, for every package both name."""
    uv = {_norm(p["name"]): p["version"] for p in tomllib.loads(uv_lock.decode()).get("package", []) if "version" in p}
    relay: dict[str, str] = {}
    for data in lock_files.values():
        relay.update({_norm(n): v for n, v in _PIN.findall(data.decode("utf-8", errors="replace"))})
    both = sorted(uv.keys() & relay.keys())
    mismatches = [f"{n}: relay {relay[n]}, uv.lock {uv[n]}" for n in both if relay[n] != uv[n]]
    return {"lock_files": sorted(lock_files), "compared": len(both), "mismatches": mismatches,
            "equal": bool(both) and not mismatches}


# --------------------------------------------------------------------------- running


def run_tool_once(tool: Tool, app: App, runner: Runner, folder: Path, rep: int, outcome: Outcome | None) -> None:
    """Every step of one tool on one fresh copy of the app; record into `outcome` (None: warm-up)."""
    variant = VARIANTS[rep % len(VARIANTS)]
    umask, tz = int(variant["umask"]), str(variant["tz"])
    copy = folder / "app"
    write_files(copy, tool.files(app))
    git_commit_all(copy)
    env = {**tool.env(copy), "TZ": tz}
    tag = "warmup" if outcome is None else f"rep{rep + 1}"
    before: dict[str, str] = {}
    for step in (s for s in tool.steps if s in app.steps):
        if step == "edit":
            edit_handler(copy)
        elif step == "bump":
            write_files(copy, tool.bump_files(app))
        seconds, cpu = tool.measure(step, app, copy, runner, f"{app.key}-{tool.name}-{tag}-{step}", env, umask)
        if outcome is None:
            continue
        outcome.times.setdefault(step, []).append(seconds)
        outcome.cpu.setdefault(step, []).append(cpu)
        after = tool.bundles(copy)
        if step == "cold":
            outcome.cold_bundles.append(after)
            outcome.variants.append({"folder": str(copy), "umask": f"{umask:04o}", "tz": tz})
        elif step == "noop":
            outcome.noop_changed.append(changed(before, after))
        elif step == "edit":
            outcome.edit_changed.append(changed(before, after))
        elif step == "bump":
            outcome.bump_changed.append(changed(before, after))
        before = after


def bench_app(app: App, tools: list[Tool], runner: Runner, work: Path, args: argparse.Namespace, warmup: bool,
              outcomes: dict[str, Outcome]) -> None:
    """Prepare every tool, warm pip's cache (unmeasured), then `repeat` rounds with tools taking turns."""

    def attempt(what: str, tool: Tool, action) -> None:
        if outcomes[tool.name].error:
            return
        try:
            action()
        except (ToolFailed, subprocess.CalledProcessError, OSError) as exc:
            outcomes[tool.name].error = f"{what}: {exc}"
            print(f"{app.key} {tool.name}: FAILED ({what}), going on with the other tools:\n{exc}", file=sys.stderr)

    for tool in tools:
        attempt("prepare", tool, lambda t=tool: t.prepare(app, runner, work / app.key))
    if warmup:
        for tool in tools:
            print(f"{app.key} warm-up: {tool.label} (unmeasured, fills pip's cache)", file=sys.stderr)
            folder = work / app.key / f"warmup-{tool.name}"
            attempt("warm-up", tool, lambda t=tool, f=folder: run_tool_once(t, app, runner, f, 0, None))
            tool.warmed(folder)
    done: list[Path] = []
    for rep in range(args.repeat):
        for tool in tools:  # tools take turns, so a slow spell of the machine hits all of them
            print(f"{app.key} run {rep + 1}/{args.repeat}: {tool.label}", file=sys.stderr)
            folder = work / app.key / f"rep{rep + 1}-{tool.name}"
            attempt(f"run {rep + 1}", tool, lambda t=tool, r=rep, f=folder: run_tool_once(
                t, app, runner, f, r, outcomes[t.name]))
            done.append(folder)
    # Freed once every round is timed, not between tools: deleting thousands of files on this VM's disk
    # (ext4 mounted with online `discard`) slowed the file creation of whichever tool ran next for seconds,
    # and a cold relay build, which creates ~2,700 files, paid for the three folders deleted before it.
    if not args.keep:
        for folder in done:
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- ratios and the table

APP_TARGETS = {
    "cold relay/sam": 0.5,
    "one handler edited relay/sam --cached": 0.3,
    "layer lock bumped relay/sam --cached": 0.5,
    "no-op relay/sam --cached": 0.05,
    "cold relay/floor": 2.0,
}
STEP_TITLES = {
    "cold": "cold build",
    "cold_cached": "cold, --cached (fills SAM's cache)",
    "noop": "no-op rebuild",
    "edit": f"one handler edited ({EDITED.rsplit('/', 1)[1]})",
    "bump": "layer lock bumped (" + " + ".join(BUMPED_PACKAGES) + ")",
}


def app_ratios(med: dict[str, dict[str, float]]) -> dict[str, float | None]:
    return {
        "cold relay/sam": ratio(med, "relay", "cold", "sam", "cold"),
        "no-op relay/sam --cached": ratio(med, "relay", "noop", "sam", "noop"),
        "one handler edited relay/sam --cached": ratio(med, "relay", "edit", "sam", "edit"),
        "layer lock bumped relay/sam --cached": ratio(med, "relay", "bump", "sam", "bump"),
        "cold relay/floor": ratio(med, "relay", "cold", "floor", "cold"),
        "layer lock bumped relay/floor": ratio(med, "relay", "bump", "floor", "bump"),
        "cold relay/pip": ratio(med, "relay", "cold", "pip", "cold"),
        "cold, no cache at all relay/floor": ratio(med, "relay-nocache", "cold", "floor", "cold"),
        "cold, no cache at all relay/sam": ratio(med, "relay-nocache", "cold", "sam", "cold"),
    }


def scale_ratios(meds: dict[int, dict[str, dict[str, float]]]) -> dict[str, float | None]:
    rat: dict[str, float | None] = {}
    smallest = min(meds)
    for n, med in meds.items():
        rat[f"{n} fn: cold relay/sam"] = ratio(med, "relay", "cold", "sam", "cold")
        rat[f"{n} fn: no-op relay/sam --cached"] = ratio(med, "relay", "noop", "sam", "noop")
        rat[f"{n} fn: cold relay/floor"] = ratio(med, "relay", "cold", "floor", "cold")
        rat[f"{n} fn: cold, no cache at all relay/floor"] = ratio(med, "relay-nocache", "cold", "floor", "cold")
        if n != smallest:
            for tool, step in (("relay", "cold"), ("relay", "noop"), ("relay-nocache", "cold")):
                a, b = med.get(tool, {}).get(step), meds[smallest].get(tool, {}).get(step)
                rat[f"{tool} {step} {n} fn / {smallest} fn"] = round(a / b, 3) if a is not None and b else None
    return rat


def scale_targets(meds: dict[int, dict]) -> dict[str, float]:
    smallest = min(meds)
    return {f"relay cold {n} fn / {smallest} fn": 3.0 for n in meds if n == 50 and smallest == 1}


def cell(med: dict[str, float], step: str) -> str:
    return f"{med[step]:>14.2f} s" if step in med else f"{'-':>16}"


def render_app(tools: list[Tool], outcomes: dict[str, Outcome], med: dict[str, dict[str, float]],
               rat: dict[str, float | None], repro: dict[str, dict]) -> list[str]:
    header = f"{'real app, median seconds':<44}" + "".join(f"{t.label:>16}" for t in tools)
    lines = [header, "-" * len(header)]
    for step, title in STEP_TITLES.items():
        cells = [cell(med.get(t.name, {}), step) for t in tools]
        if any(c.strip() != "-" for c in cells):
            lines.append(f"{title:<44}" + "".join(cells))
    cpu = {t.name: cpu_medians(outcomes[t.name]) for t in tools}
    for step, title in STEP_TITLES.items():
        cells = [f"{cpu[t.name][step]:>14.2f} s" if step in cpu[t.name] else f"{'-':>16}" for t in tools]
        if any(c.strip() != "-" for c in cells):
            lines.append(f"{'  CPU, ' + title:<44}" + "".join(cells))
    lines.append(f"{'identical zips, cold builds':<44}" + "".join(
        f"{'FAILED' if outcomes[t.name].error else {True: 'yes', False: 'NO', None: 'n/a'}[repro[t.name].get('identical')]:>16}"
        for t in tools))
    lines += ["", *ratio_lines(rat, APP_TARGETS)]
    for t in tools:
        o = outcomes[t.name]
        for what, runs in (("one handler edited", o.edit_changed), ("layer lock bumped", o.bump_changed)):
            if runs:
                lines.append(f"{t.name}: bundles changed by '{what}': {', '.join(runs[-1]) or 'none'}")
        if any(o.noop_changed):
            lines.append(f"{t.name}: the no-op rebuild changed: {', '.join(o.noop_changed[-1])}")
        if repro[t.name].get("differing"):
            lines.append(f"{t.name}: cold builds differ in: {', '.join(repro[t.name]['differing'])}")
        if o.error:
            lines.append(f"{t.name}: FAILED: {o.error.splitlines()[0]}")
    return lines


def render_scale(tools: list[Tool], runs: dict[int, dict[str, Outcome]], meds: dict[int, dict[str, dict[str, float]]],
                 rat: dict[str, float | None]) -> list[str]:
    columns = [(t, step) for t in tools for step in ("cold", "noop") if step in t.steps]
    header = f"{'scale: median seconds':<24}" + "".join(f"{t.name + ' ' + step:>16}" for t, step in columns) + \
        "".join(f"{t.name + ' cold CPU':>18}" for t in tools if "cold" in t.steps)
    lines = [header, "-" * len(header)]
    for n, med in meds.items():
        lines.append(f"{str(n) + ' functions':<24}" + "".join(
            f"{'FAILED':>16}" if runs[n][t.name].error else cell(med.get(t.name, {}), step) for t, step in columns)
            + "".join(f"{'-':>18}" if runs[n][t.name].error or "cold" not in cpu_medians(runs[n][t.name])
                      else f"{cpu_medians(runs[n][t.name])['cold']:>16.2f} s" for t in tools if "cold" in t.steps))
    lines += ["", *ratio_lines(rat, scale_targets(meds))]
    for n, outcomes in runs.items():
        for name, o in outcomes.items():
            if o.error:
                lines.append(f"{n} functions, {name}: FAILED: {o.error.splitlines()[0]}")
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported (default 3)")
    parser.add_argument("--tools", default="relay,relay-nocache,sam,pip,floor",
                        help="comma-separated subset of relay,relay-nocache,sam,pip,floor (relay-nocache: relay's "
                             "cold build with not even its downloads cached)")
    parser.add_argument("--parts", default="app,scale", help="app, scale or both (default app,scale)")
    parser.add_argument("--scale", default="1,5,20,50", help="function counts of the scaling run (default 1,5,20,50)")
    parser.add_argument("--layout", choices=LAYOUTS, default="packages",
                        help="relay's config: packages (issue 9: packages = [\"product\"], requirements = "
                             "\"pyproject.toml\", pins = \"uv.lock\") or legacy (source = \".\" + exclude + a "
                             "requirements.in exported from uv.lock)")
    parser.add_argument("--relay", type=Path, default=Path(sys.executable).parent / "relay",
                        help="the relay executable (default: next to this Python)")
    parser.add_argument("--relay-args", default="", help="extra arguments for `relay build`, e.g. \"--jobs 2\"")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured runs that warm pip's cache")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (copies, logs) for inspection")
    parser.add_argument("--json-out", type=Path, help="where to write the JSON (default bench/results/realapp-<date>.json)")
    parser.add_argument("--relock", action="store_true",
                        help="regenerate bench/fixtures/realapp/uv.lock and uv.bumped.lock with uv, then exit")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not args.parts or args.parts - {"app", "scale"}:
        parser.error("--parts takes app, scale or app,scale")
    try:
        args.scale = sorted({int(n) for n in args.scale.split(",") if n.strip()})
    except ValueError:
        parser.error("--scale takes function counts, e.g. 1,5,20,50")
    if "scale" in args.parts and (not args.scale or min(args.scale) < 1):
        parser.error("--scale needs at least one count >= 1")
    return args


def relock(runner: Runner) -> int:
    """uv.bumped.lock: the newest pins; uv.lock: the same with boto3 + botocore one release back."""
    uv = str(Path(sys.executable).parent / "uv")
    runner.run("relock-newest", [uv, "lock", "--upgrade"], cwd=REALAPP)
    newest = {p["name"]: p["version"] for p in tomllib.loads((REALAPP / "uv.lock").read_text())["package"]}
    shutil.copy(REALAPP / "uv.lock", REALAPP / BUMPED_LOCK)
    major, minor, patch = (int(x) for x in newest[BUMPED_PACKAGES[0]].split("."))
    if patch == 0:
        print(f"error: {BUMPED_PACKAGES[0]} {newest[BUMPED_PACKAGES[0]]} has no earlier patch release to lock",
              file=sys.stderr)
        return 2
    back = [arg for name in BUMPED_PACKAGES for arg in ("--upgrade-package", f"{name}=={major}.{minor}.{patch - 1}")]
    runner.run("relock-base", [uv, "lock", *back], cwd=REALAPP)
    print(f"locked {REALAPP.relative_to(BENCH.parent)}: uv.lock ({BUMPED_PACKAGES[0]} {major}.{minor}.{patch - 1}) "
          f"and {BUMPED_LOCK} ({newest[BUMPED_PACKAGES[0]]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="relay-realapp-bench-"))
    (work / "logs").mkdir()
    py_dir = python_for_runtime(PYTHON)
    runner = Runner(work / "logs", bench_env(py_dir))
    if py_dir:
        runner.base_env["UV_PYTHON"] = str(py_dir / f"python{PYTHON}")
    try:
        if args.relock:
            return relock(runner)
        return _bench(args, work, runner, py_dir)
    except ToolFailed as exc:  # the shared preparation (uv export) failed: no tool can run
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def make_tools(args: argparse.Namespace) -> list[Tool] | None:
    wanted = [name.strip() for name in args.tools.split(",") if name.strip()]
    catalogue: dict[str, Tool] = {
        "relay": Relay("relay", "relay", ("cold", "noop", "edit", "bump"), binary=args.relay,
                       extra=tuple(args.relay_args.split()), layout=args.layout),
        "relay-nocache": Relay("relay-nocache", "relay, no cache", ("cold",), binary=args.relay,
                               extra=tuple(args.relay_args.split()), layout=args.layout, no_cache=True),
        "sam": Sam("sam", "sam build", ("cold", "cold_cached", "noop", "edit", "bump")),
        "pip": PipZip("pip", "pip+zip", ("cold",)),
        "floor": Floor("floor", "floor", ("cold", "bump")),
    }
    unknown = [name for name in wanted if name not in catalogue]
    if unknown:
        print(f"error: unknown tool(s) {', '.join(unknown)}; choose from {', '.join(catalogue)}", file=sys.stderr)
        return None
    return [catalogue[name] for name in wanted]


def _bench(args: argparse.Namespace, work: Path, runner: Runner, py_dir: Path | None) -> int:
    load_before = warn_if_loaded()
    tools = make_tools(args)
    if tools is None:
        return 2
    sam_error = None
    if any(t.name == "sam" for t in tools):
        try:
            if py_dir is None:
                raise ToolFailed(f"no python{PYTHON} found on PATH or in ~/.pyenv/versions")
            ensure_sam(runner)
        except ToolFailed as exc:
            sam_error = str(exc)
    pins = pin_sets(runner, work)

    def fresh_outcomes() -> dict[str, Outcome]:
        return {t.name: Outcome(error=sam_error if t.name == "sam" else None) for t in tools}

    document: dict = {"parts": {}}
    report: list[str] = []
    warmup = not args.no_warmup
    if "app" in args.parts:
        app = realapp(pins)
        outcomes = fresh_outcomes()
        bench_app(app, tools, runner, work, args, warmup, outcomes)
        warmup = False  # pip's cache is warm for the scaling run too (same layer)
        med = {name: medians(o) for name, o in outcomes.items()}
        rat = app_ratios(med)
        repro = {name: identical(o.cold_bundles) for name, o in outcomes.items()}
        report += render_app(tools, outcomes, med, rat, repro)
        document["parts"]["app"] = {"functions": [fn.name for fn in app.functions], "medians": med, "ratios": rat,
                                    "targets": APP_TARGETS, "tools": tool_records(tools, outcomes, med, repro, app)}
    if "scale" in args.parts:
        runs: dict[int, dict[str, Outcome]] = {}
        scaled: dict[str, dict] = {}
        for n in args.scale:
            app = scale_app(n, pins)
            runs[n] = fresh_outcomes()
            bench_app(app, tools, runner, work, args, warmup, runs[n])
            warmup = False
            med = {name: medians(o) for name, o in runs[n].items()}
            repro = {name: identical(o.cold_bundles) for name, o in runs[n].items()}
            scaled[str(n)] = {"medians": med, "tools": tool_records(tools, runs[n], med, repro, app)}
        meds = {n: scaled[str(n)]["medians"] for n in args.scale}
        rat = scale_ratios(meds)
        report += ["", *render_scale(tools, runs, meds, rat)]
        document["parts"]["scale"] = {"functions": args.scale, "runs": scaled, "ratios": rat,
                                      "targets": scale_targets(meds)}
    print("\n".join(report))
    now = dt.datetime.now(dt.UTC)
    document.update({
        "date": now.isoformat(timespec="seconds"),
        "fixture": str(REALAPP.relative_to(BENCH.parent)),
        "layout": args.layout,
        "repeat": args.repeat,
        "warmup": not args.no_warmup,
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "runtime_python": str(py_dir) if py_dir else None,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "pins": {name: {"uv.lock": sha256_bytes(p["uv.lock"])} for name, p in pins.items()},
        "caches": {
            "warm": "pip's own cache (~/.cache/pip), shared by every tool; an unmeasured run of each tool's every "
                    "step warms it first" if not args.no_warmup else "pip's own cache (~/.cache/pip), as it was",
            "cold": "relay's caches (RELAY_CACHE_DIR) are empty at each cold build but for the wheels relay "
                    "downloaded in the warm-up (linked in, as pip's cache is warm for sam and pip); relay-nocache's "
                    "are empty; SAM's .aws-sam is absent",
        },
        "variants": "cold build N runs with umask/TZ " + ", ".join(f"{v['umask']:04o}/{v['tz']}" for v in VARIANTS)
                    + " alternating, each in a new folder with new file mtimes",
        "versions": {t.name: t.versions() for t in tools},
    })
    out = args.json_out or results_path(now, "realapp-")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
    return 0


def tool_records(tools: list[Tool], outcomes: dict[str, Outcome], med: dict[str, dict[str, float]],
                 repro: dict[str, dict], app: App) -> dict:
    return {
        t.name: {
            "label": t.label,
            "commands": {step: " ".join(t.command(step, Path("."))) for step in t.steps if step in app.steps},
            "seconds": outcomes[t.name].times,
            "median_seconds": med[t.name],
            "cpu_seconds": outcomes[t.name].cpu,
            "median_cpu_seconds": cpu_medians(outcomes[t.name]),
            "cold_bundles": outcomes[t.name].cold_bundles,
            "cold_variants": outcomes[t.name].variants,
            "reproducible": repro[t.name],
            "changed_by_noop": outcomes[t.name].noop_changed,
            "changed_by_edit": outcomes[t.name].edit_changed,
            "changed_by_bump": outcomes[t.name].bump_changed,
            "locked_versions_vs_uv_lock": t.pins_check.get(app.key) if isinstance(t, Relay) else None,
            "error": outcomes[t.name].error,
        }
        for t in tools
    }


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
