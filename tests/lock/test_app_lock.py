"""A real app's pins: a uv.lock made by `uv lock` (as of an older date) and a poetry.lock written from it.

relay's locks, made today, must hold exactly the versions in the app's lock,
not the newest ones, with both resolvers.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from lock_helpers import make_app

from builder.bundle import pythons
from builder.config import load_project
from builder.lock.lockfile import read_lock
from builder.lock.resolve import lock_project
from builder.lock.resolvers import find_uv

pytestmark = [pytest.mark.network, pytest.mark.skipif(find_uv() is None, reason="uv makes the app's uv.lock")]

DEPENDENCIES = ("pydantic>=2.9,<3", "requests>=2.31")
POETRY_DEPENDENCIES = ('pydantic = "^2.9"', 'requests = ">=2.31"')
AS_OF = "2025-01-15T00:00:00Z"  # pydantic 2.10.5, requests 2.32.3: older than today's


@pytest.fixture(scope="module")
def uv_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_app(tmp_path_factory.mktemp("uv") / "app", dependencies=DEPENDENCIES, layer_requirements=None,
                    pins={})
    pyproject = root / "pyproject.toml"  # the common extra of the offline tests names a local wheel: a real one here
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace('"money>=2"', '"attrs>=24"'), encoding="utf-8")
    python = pythons.find_python("3.12")
    subprocess.run([str(find_uv()), "lock", "--exclude-newer", AS_OF, "--no-python-downloads",
                    *(["--python", str(python)] if python else [])], cwd=root, check=True, capture_output=True)
    return root


def app_versions(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        packages = tomllib.load(fh)["package"]
    return {p["name"]: p["version"] for p in packages if "registry" in p.get("source", {"registry": 1})}


@pytest.mark.parametrize("resolver", ["pip-tools", "uv"])
def test_relays_lock_holds_the_versions_of_the_apps_uv_lock(uv_app: Path, tmp_path: Path, resolver: str) -> None:
    pinned = app_versions(uv_app / "uv.lock")
    assert pinned["pydantic"] == "2.10.5"  # the app's lock is as of AS_OF, older than what the index has today
    lock_project(load_project(uv_app / "relay.toml"), resolver=resolver, upgrade=True)
    locked = {r.name: r.version for r in read_lock(uv_app / "locks/function-orders.txt").requirements}
    assert {"pydantic", "pydantic-core", "requests", "urllib3", "certifi"} <= set(locked)
    assert {name: pinned[name] for name in locked} == locked


def test_relays_lock_holds_the_versions_of_a_poetry_lock(uv_app: Path, tmp_path: Path) -> None:
    pinned = app_versions(uv_app / "uv.lock")
    pins = {name: version for name, version in pinned.items() if name != "shop"}
    root = make_app(tmp_path / "app", style="poetry", dependencies=POETRY_DEPENDENCIES, layer_requirements=None,
                    pins=pins)
    lock_project(load_project(root / "relay.toml"), resolver="pip-tools")
    locked = {r.name: r.version for r in read_lock(root / "locks/function-orders.txt").requirements}
    assert "pydantic" in locked
    assert {name: pins[name] for name in locked} == locked
