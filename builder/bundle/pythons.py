"""Finding Python interpreters of a given version, and relay's tool venvs for them.

Locks are resolved under the Lambda runtime's Python so that markers such as
`python_version < "3.12"` evaluate as they will on Lambda. That interpreter is
rarely the one running relay, and it does not have pip-tools, so relay keeps one
small venv per Python version in the user cache (`tools/py3.12/`) with the same
pip and pip-tools versions as the running relay.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from builder.bundle.subproc import run
from builder.errors import BuildFailed, LockError
from builder.paths import cache_dir

_PROBE = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
_MARKER = "relay-tool.json"
_TOOL_PACKAGES = ("pip", "pip-tools")


def running_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@functools.cache
def find_python(version: str) -> Path | None:
    """An interpreter of exactly `version` ("3.12"), or None when none is installed.

    Looks on PATH (`python3.12`), then in pyenv's versions (newest patch first),
    then at a pyenv shim on PATH. Each candidate is run, because a pyenv shim
    exists for every version but fails for those not selected; a shim goes last
    because running one costs ~0.3 s (bash and pyenv) against ~0.03 s for the
    interpreter it would pick from the same versions. The interpreter's own
    `sys.executable` is returned so that later runs do not depend on the shim or
    the folder.
    """
    for candidate in _candidates(version):
        found = _probe(candidate, version)
        if found is not None:
            return found
    return None


def _candidates(version: str) -> list[Path]:
    name = f"python{version}"
    on_path = shutil.which(name)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    shim = on_path is not None and Path(on_path).parent == pyenv_root / "shims"
    candidates = [Path(on_path)] if on_path and not shim else []
    installed = (pyenv_root / "versions").glob(f"{version}.*/bin/{name}")
    candidates.extend(sorted(installed, key=_patch_key, reverse=True))
    if on_path and shim:
        candidates.append(Path(on_path))
    return candidates


def _patch_key(path: Path) -> tuple[int, str]:
    # versions/3.12.10/bin/python3.12 sorts after versions/3.12.9
    folder = path.parent.parent.name
    match = re.match(r"^\d+\.\d+\.(\d+)", folder)
    return (int(match.group(1)) if match else -1, folder)


def _probe(candidate: Path, version: str) -> Path | None:
    try:
        done = run([candidate, "-c", _PROBE], step="find python", check=False, timeout=60)
    except (BuildFailed, OSError):
        return None  # a broken candidate is just not a match
    lines = done.stdout.split()
    if not done.ok or len(lines) < 2 or lines[0] != version:
        return None
    return Path(lines[1])


def tool_python(version: str, base: Path) -> Path:
    """The Python of relay's pip-tools venv for `version`, created from `base` once.

    Created in a temporary folder and renamed into place, so two relay runs
    creating it at once both end with a complete venv; recreated when the pinned
    pip or pip-tools versions change (after an upgrade of relay).
    """
    root = cache_dir() / "tools" / f"py{version}"
    wanted = _wanted_packages()
    if _is_ready(root, wanted):
        return root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".py{version}-", dir=root.parent))
    try:
        _create_venv(base, staging, wanted)
        _swap_into_place(staging, root, wanted)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / "bin" / "python"


def _wanted_packages() -> dict[str, str]:
    import importlib.metadata  # here: only locking needs it, and it is slow to import

    return {name: importlib.metadata.version(name) for name in _TOOL_PACKAGES}


def _is_ready(root: Path, wanted: dict[str, str]) -> bool:
    try:
        recorded = json.loads((root / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded.get("packages") == wanted and (root / "bin" / "python").exists()


def _create_venv(base: Path, target: Path, wanted: dict[str, str]) -> None:
    step = "tool venv"
    run([base, "-m", "venv", "--without-pip", target], step=step, error=LockError)
    # The running relay's pip installs into the new venv: no ensurepip round trip.
    pins = [f"{name}=={version}" for name, version in wanted.items()]
    run(
        [sys.executable, "-m", "pip", "--python", target / "bin" / "python", "install",
         "--quiet", "--disable-pip-version-check", *pins],
        step=step,
        error=LockError,
        hint="relay installs pip-tools into a venv in its cache; check the package index is reachable.",
    )
    marker = {"packages": wanted, "base": str(base)}
    (target / _MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _swap_into_place(staging: Path, root: Path, wanted: dict[str, str]) -> None:
    if root.exists():
        if _is_ready(root, wanted):
            return  # another relay run finished first; its venv is as good
        retired = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
        try:
            os.replace(root, retired / root.name)
        except FileNotFoundError:
            pass  # another run retired it already
        finally:
            shutil.rmtree(retired, ignore_errors=True)
    try:
        os.rename(staging, root)
    except OSError:
        # Lost a race with another run that renamed its own venv in first.
        if not _is_ready(root, wanted):
            raise
