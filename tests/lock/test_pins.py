"""The app's own uv.lock / poetry.lock as pins: read, resolved offline against local wheels, and kept fresh."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from lock_helpers import make_app, relay, uv_lock, wheel_folder

from builder.config import load_project
from builder.errors import LockError
from builder.lock.lockfile import read_lock
from builder.lock.pins import read_pins
from builder.lock.resolve import lock_project
from builder.lock.resolvers import find_uv
from builder.lock.targets import lock_targets

needs_uv = pytest.mark.skipif(find_uv() is None, reason="uv is not installed")


def test_uv_lock_pins_index_packages_and_picks_the_fork_for_lambda(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(uv_lock({"greeting": "1.0"}) + textwrap.dedent("""
        [[package]]
        name = "NumPy"
        version = "1.26.4"
        source = { registry = "https://pypi.org/simple" }
        resolution-markers = ["python_full_version < '3.12'"]

        [[package]]
        name = "numpy"
        version = "2.2.1"
        source = { registry = "https://pypi.org/simple" }
        resolution-markers = ["python_full_version >= '3.12'"]

        [[package]]
        name = "tool"
        version = "0.1"
        source = { git = "https://github.com/o/tool?rev=abc#abc" }
    """), encoding="utf-8")
    assert read_pins(path, "python3.12", "arm64").lines == ("greeting==1.0", "numpy==2.2.1")
    assert read_pins(path, "python3.11", "x86_64").lines == ("greeting==1.0", "numpy==1.26.4")


def test_poetry_lock_pins_skip_local_packages_and_other_pythons(tmp_path: Path) -> None:
    path = tmp_path / "poetry.lock"
    path.write_text(textwrap.dedent("""
        [[package]]
        name = "pydantic"
        version = "2.10.5"
        python-versions = ">=3.8"
        groups = ["main"]
        files = []

        [[package]]
        name = "backports-zoneinfo"
        version = "0.2.1"
        python-versions = ">=3.6"
        markers = "python_version < '3.9'"
        files = []

        [[package]]
        name = "common"
        version = "0.1.0"
        python-versions = "^3.12"
        files = []
        [package.source]
        type = "directory"
        url = "libs/common"

        [metadata]
        lock-version = "2.1"
    """), encoding="utf-8")
    assert read_pins(path, "python3.12", "x86_64").lines == ("pydantic==2.10.5",)


def test_two_versions_for_the_same_environment_is_a_lock_error_naming_the_package(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(uv_lock({}) + '\n[[package]]\nname = "six"\nversion = "1.16.0"\n'
                    '\n[[package]]\nname = "six"\nversion = "1.17.0"\n', encoding="utf-8")
    with pytest.raises(LockError, match=r"six \(1.16.0, 1.17.0\)"):
        read_pins(path, "python3.12", "x86_64")


# -- resolving offline against local wheels -------------------------------------------------------------


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    house = tmp_path / "wheelhouse"
    for variable, value in (("PIP_FIND_LINKS", house), ("PIP_NO_INDEX", "1"), ("UV_FIND_LINKS", house),
                            ("UV_NO_INDEX", "1")):
        monkeypatch.setenv(variable, str(value))
    return wheel_folder(house)


def locked_versions(path: Path) -> dict[str, str]:
    return {r.name: r.version for r in read_lock(path).requirements}


@pytest.mark.parametrize("resolver", ["pip-tools", pytest.param("uv", marks=needs_uv)])
@pytest.mark.parametrize(("style", "dependencies"), [
    ("pep621", ("greeting>=1.0",)), ("poetry", ('greeting = ">=1.0"',)),
])
def test_the_locked_versions_are_the_apps_not_the_newest(tmp_path: Path, wheels: dict[str, Path], resolver: str,
                                                         style: str, dependencies: tuple[str, ...]) -> None:
    root = make_app(tmp_path / "app", style=style, dependencies=dependencies,
                    pins={"greeting": "1.0", "money": "2.1", "pytest": "8.3.4"}, wheels=wheels)
    result = lock_project(load_project(root / "relay.toml"), resolver=resolver)
    assert [o.status for o in result.outcomes] == ["locked", "locked"]
    assert locked_versions(root / "locks/function-orders.txt") == {"greeting": "1.0"}  # 1.1 is in the wheelhouse
    assert locked_versions(root / "locks/layer-common.txt") == {"money": "2.1"}  # the group only, pinned
    text = (root / "locks/function-orders.txt").read_text(encoding="utf-8")
    assert str(tmp_path) not in text and "relay-lock-" not in text  # no scratch paths
    assert "-r pyproject.toml" in text
    # the control: without pins (and without relay's lock to keep) the same resolver takes the newest
    for lock in (root / "locks").iterdir():
        lock.unlink()
    (root / "relay.toml").write_text((root / "relay.toml").read_text(encoding="utf-8").replace(
        f'pins = "{"uv.lock" if style == "pep621" else "poetry.lock"}"\n', ""), encoding="utf-8")
    lock_project(load_project(root / "relay.toml"), resolver=resolver)
    assert locked_versions(root / "locks/function-orders.txt") == {"greeting": "1.1"}
    assert locked_versions(root / "locks/layer-common.txt") == {"money": "2.2"}


def test_staleness_follows_what_decides_the_resolution(tmp_path: Path, wheels: dict[str, Path]) -> None:
    root = make_app(tmp_path / "app", pins={"greeting": "1.0", "money": "2.1"}, wheels=wheels)
    assert relay("lock", "--resolver", "pip-tools", cwd=root).returncode == 0
    pyproject, pins = root / "pyproject.toml", root / "uv.lock"
    original_pyproject, original_pins = pyproject.read_text(encoding="utf-8"), pins.read_text(encoding="utf-8")

    def check() -> dict[str, str]:
        done = relay("lock", "--check", "--json", cwd=root)
        assert done.returncode in (0, 6), done.stderr
        return {f"{o['kind']} {o['name']}": o["status"] for o in json.loads(done.stdout)["locks"]}

    assert check() == {"layer common": "ok", "function orders": "ok"}
    # the project's version bumped (in pyproject and in uv.lock's own entry), the file reformatted: not stale
    pyproject.write_text(original_pyproject.replace('version = "0.1.0"', 'version = "0.2.0"').replace(
        '"greeting>=1.0"', '"Greeting >= 1.0"  # the one dependency'), encoding="utf-8")
    pins.write_text(uv_lock({"greeting": "1.0", "money": "2.1"}, wheels, version="0.2.0"), encoding="utf-8")
    assert pins.read_text(encoding="utf-8") != original_pins
    assert check() == {"layer common": "ok", "function orders": "ok"}
    # a requirement changed: stale, and `relay build` refuses too
    pyproject.write_text(original_pyproject.replace('"greeting>=1.0"', '"greeting>=1.0,<2"'), encoding="utf-8")
    assert check() == {"layer common": "ok", "function orders": "stale"}
    done = relay("lock", "--check", cwd=root)
    assert done.returncode == 6 and "the requirements in pyproject.toml or the pins in uv.lock changed" in done.stdout
    built = relay("build", "orders", cwd=root)
    assert built.returncode == 6, built.stderr
    assert "locks/function-orders.txt is stale" in built.stderr
    # a pin changed: stale (every target with these pins: which pins matter is known only after resolving)
    pyproject.write_text(original_pyproject, encoding="utf-8")
    pins.write_text(uv_lock({"greeting": "1.1", "money": "2.1"}, wheels), encoding="utf-8")
    assert check() == {"layer common": "stale", "function orders": "stale"}
    # the group changed: stale
    pins.write_text(original_pins, encoding="utf-8")
    pyproject.write_text(original_pyproject + '\n[tool.pytest.ini_options]\naddopts = "-q"\n', encoding="utf-8")
    config = root / "relay.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("#common", "#Common"), encoding="utf-8")
    assert check() == {"layer common": "ok", "function orders": "ok"}  # the same group, however it is spelled
    pyproject.write_text(original_pyproject.replace("common = [", 'other = ["money>=2"]\ncommon = ['),
                         encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace("#Common", "#other"), encoding="utf-8")
    assert check() == {"layer common": "stale", "function orders": "ok"}


def test_a_pin_that_contradicts_a_requirement_is_a_lock_error_naming_it(tmp_path: Path,
                                                                         wheels: dict[str, Path]) -> None:
    root = make_app(tmp_path / "app", dependencies=("greeting>=1.1",), pins={"greeting": "1.0", "money": "2.1"},
                    layer_requirements=None)
    done = relay("lock", "--resolver", "pip-tools", cwd=root)
    assert done.returncode == 4, done.stderr
    assert "pyproject.toml conflicts with uv.lock: greeting (requires >=1.1, pinned 1.0)" in done.stderr
    assert not (root / "locks/function-orders.txt").exists()


def test_a_pin_the_index_cannot_satisfy_is_a_lock_error_naming_it(tmp_path: Path, wheels: dict[str, Path]) -> None:
    root = make_app(tmp_path / "app", dependencies=("greeting", "money"), pins={"greeting": "1.0", "money": "9.9"},
                    layer_requirements=None)
    with pytest.raises(LockError) as caught:
        lock_project(load_project(root / "relay.toml"), resolver="pip-tools")
    assert "money==9.9" in caught.value.message  # named, with the other pins of what it asks for
    assert caught.value.exit_code == 4


def test_a_targets_inputs_are_its_requirements_and_pins(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", pins={"greeting": "1.0"})
    (root / "base.in").write_text("six\n", encoding="utf-8")
    (root / "fn.in").write_text("-r base.in\n", encoding="utf-8")
    config = root / "relay.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('requirements = "pyproject.toml"\n',
                                                                 'requirements = "fn.in"\n', 1), encoding="utf-8")
    targets = {t.label: t for t in lock_targets(load_project(config))}
    assert targets["layer common"].inputs == (root / "pyproject.toml", root / "uv.lock")
    assert targets["function orders"].inputs == (root / "fn.in", root / "base.in", root / "uv.lock")
    assert targets["function orders"].lock == root / "fn.txt"
