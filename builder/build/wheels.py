"""Wheels for the Lambda platform: a content-addressed wheel cache, and pip.

The cache is keyed by the sha256 the lock pins (`<cache>/wheels/<sha256>/<file>`),
so a fresh checkout on a warm machine installs without touching the index,
whatever pip's own HTTP cache does. Every pip call runs with
`--require-hashes`, for x86_64 and arm64 alike.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from builder.build import platform, subproc
from builder.build.lockfile import LockedRequirement, LockFile
from builder.errors import BuildFailed


def wheel_cache_dir(cache_root: Path) -> Path:
    return cache_root / "wheels"


def cached_wheel(req: LockedRequirement, wheels: Path, runtime: str, arch: str) -> Path | None:
    """A cached wheel whose sha256 the lock allows and Lambda can load, or None."""
    for pinned in req.hashes:
        folder = wheels / pinned.removeprefix("sha256:")
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.glob("*.whl")):
            if platform.wheel_compatible(candidate.name, runtime, arch):
                return candidate
    return None


def ensure_wheels(lock: LockFile, *, cache_root: Path, runtime: str, arch: str, offline: bool) -> list[Path]:
    """One cached wheel per locked requirement, downloading only what is missing."""
    wheels = wheel_cache_dir(cache_root)
    found = {req.name: cached_wheel(req, wheels, runtime, arch) for req in lock.requirements}
    missing = [req for req in lock.requirements if found[req.name] is None]
    if missing:
        if offline:
            names = ", ".join(f"{r.name}=={r.version}" for r in missing)
            raise BuildFailed(
                "download",
                f"not in the wheel cache for {runtime}/{arch}: {names}",
                hint="Run once without --offline to fill the wheel cache.",
            )
        _download(lock, missing, wheels, runtime, arch)
        found.update({req.name: cached_wheel(req, wheels, runtime, arch) for req in missing})
    lost = [name for name, path in found.items() if path is None]
    if lost:
        raise BuildFailed("download", f"pip gave no usable wheel for {', '.join(lost)} ({runtime}/{arch})")
    return [found[req.name] for req in lock.requirements]


def install(lock: LockFile, wheels: list[Path], target: Path, *, runtime: str, arch: str) -> None:
    """`pip install --target` from the cached wheels only, hashes enforced."""
    target.mkdir(parents=True, exist_ok=True)
    if not lock.requirements:
        return
    with tempfile.TemporaryDirectory(prefix="relay-links-") as links:
        for wheel in wheels:
            os.symlink(wheel, Path(links) / wheel.name)
        _run_pip(
            [
                "install",
                "--target", str(target),
                "--no-index",
                "--find-links", links,
                "--no-deps",
                "--require-hashes",
                "--no-compile",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                *platform.pip_target_args(runtime, arch),
                "-r", str(lock.path),
            ],
            step="install",
        )


def _download(lock: LockFile, missing: list[LockedRequirement], wheels: Path, runtime: str, arch: str) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-dl-") as tmp:
        subset = Path(tmp) / "requirements.txt"
        subset.write_text("".join(_requirement_line(req) for req in missing), encoding="utf-8")
        dest = Path(tmp) / "wheels"
        _run_pip(
            [
                "download",
                "--dest", str(dest),
                "--no-deps",
                "--require-hashes",
                "--disable-pip-version-check",
                *platform.pip_target_args(runtime, arch),
                "-r", str(subset),
            ],
            step="download",
        )
        for wheel in sorted(dest.glob("*.whl")):
            _file_into_cache(wheel, wheels)


def _file_into_cache(wheel: Path, wheels: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    folder = wheels / digest
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / wheel.name
    if not final.exists():
        staged = folder / f".{wheel.name}.{os.getpid()}.tmp"
        shutil.copyfile(wheel, staged)
        os.replace(staged, final)


def _run_pip(args: list[str], *, step: str) -> None:
    done = subproc.run([*_pip(), *args], step=step, env=_pip_env(), check=False)
    if done.ok:
        return
    mismatch = _HASH_MISMATCH.search(done.stderr)
    if mismatch:
        got = _GOT.search(done.stderr)
        raise BuildFailed(
            step,
            f"hash mismatch for {mismatch.group(1)}: the file pip fetched has sha256 "
            f"{got.group(1) if got else '?'}, which the lock does not pin",
            hint="The lock or the package source changed: check who edited the lock, then `relay lock --upgrade` if the change is wanted.",
        )
    raise BuildFailed(step, subproc.failure_reason(done))


_HASH_MISMATCH = re.compile(r"DO NOT MATCH THE HASHES.*?\n\s+(\S+==\S+)", re.S)
_GOT = re.compile(r"Got\s+([0-9a-f]{64})")


def _requirement_line(req: LockedRequirement) -> str:
    hashes = " ".join(f"--hash={h}" for h in req.hashes)
    return f"{req.name}=={req.version} {hashes}\n"


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip"]


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode and version checks vary by host and time; keep pip quiet and deterministic.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env
