"""The import check for bundles this machine cannot import: arm64 on an x86_64 host, or no runtime Python here.

End to end through `relay build` (offline: wheels made here, pip pointed at
them), on apps laid out like real ones: handlers inside a package folder,
dependencies with their own Requires-Dist, compiled modules for each machine.
"""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import pytest
from runtime_helpers import arm_project, build_wheel, fake_elf, lock_for

from builder.bundle.pythons import find_python
from builder.runtime.interpreter import host_architecture

pytestmark = pytest.mark.skipif(host_architecture() != "x86_64", reason="arm64 is the foreign architecture here")

RUNTIME = "python3.12"
HANDLER = "import colour\n\n\ndef handle(event, context):\n    return colour.NAME\n"


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip's only index is the wheelhouse; relay's cache is the test's."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("QEMU_LD_PREFIX", raising=False)
    return house


def colour_wheel(house: Path, *, requires: tuple[str, ...] = ()) -> Path:
    return build_wheel(house, "colour", "1.0", {"colour/__init__.py": "NAME = 'red'\n"}, requires=requires)


def locked_project(root: Path, house: Path, handler: str = HANDLER, *, runtime: str = RUNTIME,
                   wheels: dict[tuple[str, str], list[Path]] | None = None, requirements: str = "colour\n",
                   **kwargs) -> Path:
    arm_project(root, runtime=runtime, handler_code=handler, requirements=requirements, **kwargs)
    pins = wheels if wheels is not None else {("colour", "1.0"): [colour_wheel(house)]}
    lock_for(root / "functions/api/requirements.in", pins, runtime)
    return root


def check_of(run, name: str = "api") -> dict:
    [bundle] = [b for b in run.json()["bundles"] if b["name"] == name]
    return bundle["import_check"]


# -- the acceptance: an arm64 function whose lock lacks what it imports fails here, as on x86_64 -----


def test_an_arm64_function_whose_lock_lacks_an_import_fails_naming_it(tmp_path: Path, offline: Path, relay) -> None:
    handler = "import colour\nimport yaml\n\n\ndef handle(event, context):\n    return 1\n"
    root = locked_project(tmp_path / "app", offline, handler)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "no module named 'yaml'" in run.stderr and "/var/task/api/app.py:2" in run.stderr
    assert "not in the lock" in run.stderr and "functions/api/requirements.in" in run.stderr
    assert not (root / "dist/api.zip").exists(), "a bundle that fails its import check never reaches dist/"


def test_with_the_package_locked_it_passes_and_the_report_says_static(tmp_path: Path, offline: Path, relay) -> None:
    root = locked_project(tmp_path / "app", offline)

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    check = check_of(run)
    assert check["status"] == "static"
    assert "arm64 bundle on an x86_64 host" in check["note"]
    assert "2 bundle" in check["note"] and "1 distributions" in check["note"]
    text = relay("build", cwd=root)  # the table says it too (from the no-op stamp)
    assert "static: an arm64 bundle" in text.stdout


def test_the_same_check_imports_on_the_hosts_architecture(tmp_path: Path, offline: Path, relay) -> None:
    if find_python("3.12") is None:
        pytest.skip("python3.12 is not installed here")
    root = locked_project(tmp_path / "app", offline, architecture="x86_64")

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    assert check_of(run)["status"] == "imported" and "python3.12" in check_of(run)["note"]


def test_a_missing_transitive_requirement_fails_naming_both(tmp_path: Path, offline: Path, relay) -> None:
    wheel = colour_wheel(offline, requires=("pigment>=2",))
    root = locked_project(tmp_path / "app", offline, wheels={("colour", "1.0"): [wheel]})

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "distribution 'pigment' is not installed" in run.stderr and "required by colour 1.0 (pigment>=2)" in run.stderr
    assert "Add pigment to the requirements" in run.stderr


def test_requirements_that_do_not_hold_on_the_target_are_skipped(tmp_path: Path, offline: Path, relay) -> None:
    wheel = colour_wheel(offline, requires=(
        'pigment; extra == "paint"',  # an extra nobody asked for
        'tomli; python_version < "3.11"',
        'intel-only; platform_machine == "x86_64"',  # an arm64 bundle
        'winreg-helper; sys_platform == "win32"',
        'boto3>=1.20',  # the runtime provides it
    ))
    root = locked_project(tmp_path / "app", offline, wheels={("colour", "1.0"): [wheel]})

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    assert check_of(run)["status"] == "static"


def test_an_extra_another_distribution_asks_for_counts(tmp_path: Path, offline: Path, relay) -> None:
    colour = colour_wheel(offline, requires=('pigment; extra == "paint"',))
    brush = build_wheel(offline, "brush", "1.0", {"brush/__init__.py": ""}, requires=("colour[paint]",))
    root = locked_project(tmp_path / "app", offline, requirements="colour\nbrush\n",
                          wheels={("colour", "1.0"): [colour], ("brush", "1.0"): [brush]})

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "'pigment' is not installed" in run.stderr and "required by colour 1.0 (pigment" in run.stderr


@pytest.mark.parametrize("guarded", [
    "try:\n    import ujson as json\nexcept ImportError:\n    import json\n",
    "try:\n    import ujson\nexcept (ModuleNotFoundError, RuntimeError):\n    ujson = None\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mypy_boto3_s3\n",
    "import sys\nif sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli as tomllib\n",
    "import contextlib\nwith contextlib.suppress(ImportError):\n    import ujson\n",
    "def later():\n    import only_at_call_time\n",
])
def test_guarded_and_deferred_imports_pass(tmp_path: Path, offline: Path, relay, guarded: str) -> None:
    root = locked_project(tmp_path / "app", offline, guarded + "\n" + HANDLER)

    run = relay("build", cwd=root)

    assert run.code == 0, run


def test_a_fallback_import_that_is_also_absent_fails(tmp_path: Path, offline: Path, relay) -> None:
    handler = "try:\n    import ujson as json\nexcept ImportError:\n    import simplejson as json\n" + HANDLER
    root = locked_project(tmp_path / "app", offline, handler)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "simplejson" in run.stderr


@pytest.mark.parametrize(("runtime", "module", "ok"), [
    ("python3.11", "imp", True),
    ("python3.12", "imp", False),  # removed in 3.12
    ("python3.12", "cgi", True),
    ("python3.13", "cgi", False),  # PEP 594, removed in 3.13
    ("python3.13", "annotationlib", False),
    ("python3.14", "annotationlib", True),  # new in 3.14
    ("python3.11", "tomllib", True),
])
def test_the_standard_library_is_the_target_versions(tmp_path: Path, offline: Path, relay, runtime: str,
                                                     module: str, ok: bool) -> None:
    root = locked_project(tmp_path / "app", offline, f"import {module}\n" + HANDLER, runtime=runtime)

    run = relay("build", cwd=root)

    assert run.code == (0 if ok else 4), run
    if not ok:
        assert f"no module named {module!r}" in run.stderr


def test_a_handler_the_module_does_not_define_fails(tmp_path: Path, offline: Path, relay) -> None:
    root = locked_project(tmp_path / "app", offline, "import colour\n\n\ndef handler(event, context):\n    return 1\n")

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "api.app has no function handle" in run.stderr


def test_the_functions_own_modules_are_followed(tmp_path: Path, offline: Path, relay) -> None:
    handler = "from . import models\nfrom .services.store import save\n" + HANDLER
    extra = {
        "functions/api/api/models.py": "import colour\nimport attrs_not_locked\n",
        "functions/api/api/services/__init__.py": "",
        "functions/api/api/services/store.py": "def save():\n    pass\n",
    }
    root = locked_project(tmp_path / "app", offline, handler, extra=extra)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "attrs_not_locked" in run.stderr and "/var/task/api/models.py:2" in run.stderr


# -- native extensions: matched by the target's suffix and machine ---------------------------------------


def test_a_compiled_module_built_on_the_host_fails_an_arm64_bundle(tmp_path: Path, offline: Path, relay) -> None:
    handler = "from api import speedups\n" + HANDLER
    root = locked_project(tmp_path / "app", offline, handler)
    (root / "functions/api/api/speedups.cpython-312-x86_64-linux-gnu.so").write_bytes(fake_elf("x86_64"))

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "speedups" in run.stderr and ".cpython-312-aarch64-linux-gnu.so" in run.stderr


def test_compiled_wheels_for_arm64_pass_and_a_mislabelled_one_fails(tmp_path: Path, offline: Path, relay,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tag = "cp312-cp312-manylinux_2_17_aarch64"

    def house_with(machine: str) -> dict[tuple[str, str], list[Path]]:
        # The name and tag say aarch64; the compiled file inside is built for `machine`.
        house = offline / machine
        monkeypatch.setenv("PIP_FIND_LINKS", str(house))
        fastmath = build_wheel(house, "fastmath", "1.0", {
            "fastmath/__init__.py": "from fastmath._core import add\n",
            "fastmath/_core.cpython-312-aarch64-linux-gnu.so": fake_elf(machine),
        }, tag=tag)
        return {("colour", "1.0"): [colour_wheel(house)], ("fastmath", "1.0"): [fastmath]}

    root = locked_project(tmp_path / "app", offline, "import fastmath\n" + HANDLER, requirements="colour\nfastmath\n",
                          wheels=house_with("aarch64"))
    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    assert "1 native files" in check_of(run)["note"]

    lock_for(root / "functions/api/requirements.in", house_with("x86_64"), RUNTIME)
    run = relay("build", cwd=root)
    assert run.code == 4, run
    assert "an ELF file for x86_64, not aarch64" in run.stderr


# -- the hint: "your code is not at the zip root" vs "not in the lock" -------------------------------------


def test_a_package_shipped_as_its_contents_gets_the_packages_hint(tmp_path: Path, offline: Path, relay) -> None:
    # Laid out like real apps: app/ is the package, handlers in subpackages, source = "app".
    root = tmp_path / "shop"
    arm_project(root, runtime=RUNTIME, handler_code="", requirements="colour\n")
    (root / "relay.toml").write_text(textwrap.dedent(f"""\
        [app]
        name = "shop"
        runtime = "{RUNTIME}"

        [functions.orders]
        source = "app"
        handler = "app.handlers.orders.handle"
        architecture = "arm64"
        requirements = "requirements.in"
        """))
    files = {
        "requirements.in": "colour\n",
        "app/__init__.py": "",
        "app/handlers/__init__.py": "",
        "app/handlers/orders.py": "from app.models import Order\n\n\ndef handle(event, context):\n    return 1\n",
        "app/models.py": "import colour\n\n\nclass Order:\n    pass\n",
        "docs/index.md": "# shop\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    lock_for(root / "requirements.in", {("colour", "1.0"): [colour_wheel(offline)]}, RUNTIME)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "no module named 'app'" in run.stderr
    assert 'packages = ["app"]' in run.stderr and "not at the zip's root" in run.stderr
    assert "not in the lock" not in run.stderr

    # Doing what the hint says builds, and the package is at the zip's root under its own name.
    toml = root / "relay.toml"
    toml.write_text(toml.read_text().replace('source = "app"', 'packages = ["app"]'))
    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    assert check_of(run, "orders")["status"] == "static"
    with zipfile.ZipFile(root / "dist/orders.zip") as archive:
        assert "app/handlers/orders.py" in archive.namelist()


# -- python3.14: no interpreter here, so the check is static, and cp314 wheels for both machines --------


@pytest.mark.skipif(find_python("3.14") is not None, reason="python3.14 is installed here")
@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_python314_builds_cp314_wheels_and_checks_statically(tmp_path: Path, offline: Path, relay,
                                                              architecture: str) -> None:
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    wheels = [
        build_wheel(offline, "fastmath", "1.0", {
            "fastmath/__init__.py": "from fastmath._core import add\n",
            f"fastmath/_core.cpython-314-{m}-linux-gnu.so": fake_elf(m),
        }, tag=f"cp314-cp314-manylinux_2_17_{m}")
        for m in ("x86_64", "aarch64")
    ]
    # A cp313 wheel sits in the index too: pip must not take it for 3.14.
    build_wheel(offline, "fastmath", "1.0", {"fastmath/__init__.py": ""}, tag=f"cp313-cp313-manylinux_2_17_{machine}")
    handler = "import annotationlib\nimport fastmath\n\n\ndef handle(event, context):\n    return 1\n"
    root = locked_project(tmp_path / "app", offline, handler, runtime="python3.14", requirements="fastmath\n",
                          wheels={("fastmath", "1.0"): wheels}, architecture=architecture)

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    check = check_of(run)
    assert check["status"] == "static"
    assert "python3.14 is not installed here" in check["note"] or "arm64 bundle" in check["note"]
    with zipfile.ZipFile(root / "dist/api.zip") as archive:
        assert f"fastmath/_core.cpython-314-{machine}-linux-gnu.so" in archive.namelist()


@pytest.mark.skipif(find_python("3.14") is not None, reason="python3.14 is installed here")
def test_invoking_python314_without_its_interpreter_says_what_to_install(tmp_path: Path, offline: Path, relay) -> None:
    handler = "def handle(event, context):\n    return 1\n"
    root = locked_project(tmp_path / "app", offline, handler, runtime="python3.14", requirements="",
                          wheels={}, architecture="x86_64")
    assert relay("build", cwd=root).code == 0

    run = relay("invoke", "api", cwd=root)

    assert run.code == 13, run
    assert "no Python 3.14 interpreter" in run.stderr and "pyenv install 3.14" in run.stderr


@pytest.mark.skipif(find_python("3.14") is not None, reason="python3.14 is installed here")
def test_python314_locks_with_uv_and_builds_both_machines(tmp_path: Path, offline: Path, relay,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.lock.resolvers import find_uv

    if find_uv() is None:
        pytest.skip("uv is not installed")
    monkeypatch.setenv("UV_FIND_LINKS", str(offline))
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    for m in ("x86_64", "aarch64"):
        build_wheel(offline, "fastmath", "1.0", {
            "fastmath/__init__.py": "from fastmath._core import add\n",
            f"fastmath/_core.cpython-314-{m}-linux-gnu.so": fake_elf(m),
        }, tag=f"cp314-cp314-manylinux_2_17_{m}")
    colour_wheel(offline)
    root = tmp_path / "app"
    arm_project(root, runtime="python3.14", requirements="fastmath\ncolour\n",
                handler_code="import colour\nimport fastmath\n\n\ndef handle(event, context):\n    return 1\n")
    with (root / "relay.toml").open("a") as toml:
        toml.write('\n[functions.intel]\nsource = "functions/api"\nhandler = "api.app.handle"\n'
                   'requirements = "functions/intel/requirements.in"\n')
    (root / "functions/intel").mkdir()
    (root / "functions/intel/requirements.in").write_text("fastmath\ncolour\n")

    locked = relay("lock", "--resolver", "uv", cwd=root)
    assert locked.code == 0, locked
    for folder in ("api", "intel"):
        lock_text = (root / f"functions/{folder}/requirements.txt").read_text()
        assert "runtime=python3.14" in lock_text and "fastmath==1.0" in lock_text

    run = relay("build", "--json", cwd=root)
    assert run.code == 0, run
    for name, machine in (("api", "aarch64"), ("intel", "x86_64")):
        assert check_of(run, name)["status"] == "static"
        with zipfile.ZipFile(root / f"dist/{name}.zip") as archive:
            assert f"fastmath/_core.cpython-314-{machine}-linux-gnu.so" in archive.namelist()


# -- qemu-user: used when it and the target machine's Python are found ----------------------------------


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `qemu-aarch64` that runs its program natively, and a root holding "an aarch64 Python 3.12"."""
    host_python = find_python("3.12")
    if host_python is None:
        pytest.skip("python3.12 is not installed here")
    bin_dir, root = tmp_path / "qemu-bin", tmp_path / "aarch64-root"
    bin_dir.mkdir()
    log = tmp_path / "qemu.log"
    qemu = bin_dir / "qemu-aarch64"
    qemu.write_text(f'#!/bin/sh\n[ "$1" = "-L" ] || exit 9\necho "$2" >> {log}\nshift 2\nexec "$@"\n')
    qemu.chmod(0o755)
    (root / "var/lang/bin").mkdir(parents=True)
    (root / "var/lang/bin/python3.12").symlink_to(host_python)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("QEMU_LD_PREFIX", str(root))
    return log


def test_with_qemu_and_an_aarch64_python_the_arm64_handler_is_imported(tmp_path: Path, offline: Path, relay,
                                                                       fake_qemu: Path) -> None:
    root = locked_project(tmp_path / "app", offline)

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    check = check_of(run)
    assert check["status"] == "imported" and "var/lang/bin/python3.12 under qemu-aarch64" in check["note"]
    assert fake_qemu.read_text().strip(), "the handler ran under the emulator"

    broken = locked_project(tmp_path / "broken", offline, "import yaml\n" + HANDLER)
    run = relay("build", cwd=broken)
    assert run.code == 4 and "no module named 'yaml'" in run.stderr


# -- the real thing: pydantic for python3.14 on both machines ---------------------------------------------


@pytest.mark.network
def test_real_pydantic_for_python314_picks_cp314_wheels_for_both_machines(tmp_path: Path, relay,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.lock.resolvers import find_uv

    if find_uv() is None:
        pytest.skip("uv is not installed")
    for name in ("PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name)
    handler = ("import pydantic\n\n\nclass Order(pydantic.BaseModel):\n    id: int\n\n\n"
               "def handle(event, context):\n    return 1\n")
    root = tmp_path / "app"
    arm_project(root, runtime="python3.14", requirements="pydantic\n", handler_code=handler)
    with (root / "relay.toml").open("a") as toml:
        toml.write('\n[functions.intel]\nsource = "functions/api"\nhandler = "api.app.handle"\n'
                   'requirements = "functions/intel/requirements.in"\n')
    (root / "functions/intel").mkdir()
    (root / "functions/intel/requirements.in").write_text("pydantic\n")

    assert (locked := relay("lock", "--resolver", "uv", cwd=root)).code == 0, locked
    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    for name, machine in (("api", "aarch64"), ("intel", "x86_64")):
        assert check_of(run, name)["status"] == "static"
        with zipfile.ZipFile(root / f"dist/{name}.zip") as archive:
            names = archive.namelist()
        assert f"pydantic_core/_pydantic_core.cpython-314-{machine}-linux-gnu.so" in names
        wheel = next(n for n in names if n.startswith("pydantic_core-") and n.endswith(".dist-info/WHEEL"))
        with zipfile.ZipFile(root / f"dist/{name}.zip") as archive:
            tags = archive.read(wheel).decode()
        assert "cp314-cp314-manylinux" in tags and machine in tags
