"""The image's install stage, run here without Docker: the hashed locks install and relay's wheel builds from them.

The same commands as the Dockerfile's `install` stage, against the package
index (network): relay's dependencies with `--require-hashes` for both
architectures the base image has, the wheel builder with `--require-hashes`,
relay's wheel built from the build context (.dockerignore applied) with no
build isolation and no index. The whole stage (relay's dependencies really
installed, the wheel `--no-deps`, `pip check`) takes minutes: opt-in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from image_spec import DOCKER_DIR, copy_context
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.bundle.pythons import find_python

pytestmark = pytest.mark.network

GLIBC = ["2_5", "2_12", "2_17", "2_24", "2_26", "2_27", "2_28", "2_31", "2_34", "2_35", "2_36"]  # bookworm: 2.36
# The image's pip reads no pip.conf: --isolated does the same here.
PIP = ["-m", "pip", "--isolated", "--disable-pip-version-check"]


def run(argv: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_relays_dependencies_resolve_with_require_hashes_for_the_images_platforms(arch: str, tmp_path: Path) -> None:
    platforms = [arg for glibc in GLIBC for arg in ("--platform", f"manylinux_{glibc}_{arch}")]
    done = run([sys.executable, *PIP, "install", "--dry-run", "--require-hashes", "--only-binary", ":all:",
                "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--abi", "abi3",
                "--abi", "none", *platforms, "--platform", "any", "--target", tmp_path / "target",
                "-r", DOCKER_DIR / "requirements.txt"])
    assert "Would install" in done.stdout and "boto3-" in done.stdout and "rich-" in done.stdout


def test_the_pinned_backend_builds_relays_wheel_offline_from_the_build_context(tmp_path: Path) -> None:
    context = copy_context(tmp_path / "context")
    assert not (context / "tests").exists() and (context / "docker" / "requirements.txt").is_file()
    builder_venv, wheels = tmp_path / "wheel-builder", tmp_path / "wheels"
    run([sys.executable, "-m", "venv", "--without-pip", builder_venv])
    run([sys.executable, *PIP, "--python", builder_venv / "bin" / "python", "install", "--require-hashes",
         "--only-binary", ":all:", "-r", "docker/build-requirements.txt"], cwd=context)
    run([sys.executable, *PIP, "--python", builder_venv / "bin" / "python", "wheel", "--no-deps",
         "--no-build-isolation", "--no-index", "--wheel-dir", wheels, "."], cwd=context)

    (wheel,) = wheels.glob("lambda_relay-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1] for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]
    # relay init writes the tested CI templates from the wheel; the schemas validate configs and manifests.
    assert {"builder/pipelines/github/relay.yml", "builder/pipelines/gitlab/.gitlab-ci.yml",
            "builder/pipelines/codebuild/buildspec-build.yml"} <= set(names)
    assert {"builder/schemas/config.schema.json", "builder/schemas/manifest.schema.json"} <= set(names)
    assert {"builder/cli.py", "builder/scaffold.py"} <= set(names)
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "relay = builder.entry:run" in archive.read(entry_points).decode()
    locked = (DOCKER_DIR / "requirements.txt").read_text(encoding="utf-8").lower()
    for line in requires:
        name = canonicalize_name(Requirement(line).name)
        assert f"\n{name}==" in locked, f"the wheel requires {name}, which docker/requirements.txt does not pin"


@pytest.mark.skipif(os.environ.get("RELAY_DOCKER_INSTALL_TEST") != "1",
                    reason="the whole install stage takes 2-3 minutes: run it with RELAY_DOCKER_INSTALL_TEST=1")
def test_the_install_stage_installs_relay_from_the_hashed_locks(tmp_path: Path) -> None:
    context = copy_context(tmp_path / "context")
    found = find_python("3.12")  # the install stage's Python, found as relay finds it
    python = str(found) if found else sys.executable
    relay_venv, builder_venv, wheels = tmp_path / "relay", tmp_path / "wheel-builder", tmp_path / "wheels"
    for venv in (relay_venv, builder_venv):
        run([python, "-m", "venv", "--without-pip", venv])
    run([sys.executable, *PIP, "--python", relay_venv / "bin" / "python", "install", "--require-hashes",
         "--only-binary", ":all:", "-r", "docker/requirements.txt"], cwd=context)
    run([sys.executable, *PIP, "--python", builder_venv / "bin" / "python", "install", "--require-hashes",
         "--only-binary", ":all:", "-r", "docker/build-requirements.txt"], cwd=context)
    run([sys.executable, *PIP, "--python", builder_venv / "bin" / "python", "wheel", "--no-deps",
         "--no-build-isolation", "--no-index", "--wheel-dir", wheels, "."], cwd=context)
    (wheel,) = wheels.glob("lambda_relay-*.whl")
    run([relay_venv / "bin" / "python", *PIP, "install", "--no-deps", "--no-index", wheel])
    run([relay_venv / "bin" / "python", *PIP, "check"])
    assert run([relay_venv / "bin" / "relay", "--version"], cwd=tmp_path).stdout.strip()
