"""The static import check's rules, on mounted folders (no zips, no build): fast and one rule per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from runtime_helpers import fake_elf

from builder.runtime.distributions import InstalledDistribution, missing_requirements
from builder.runtime.extensions import elf_machine, extension_suffixes, split_extension
from builder.runtime.mount import Mount
from builder.runtime.static import Problem, check_statically
from builder.runtime.stdlib import stdlib_modules, stdlib_modules_from


def mount(tmp_path: Path, task: dict[str, str | bytes], opt: dict[str, str | bytes] | None = None) -> Mount:
    for base, files in ((tmp_path / "task", task), (tmp_path / "opt", opt or {})):
        base.mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return Mount(task=tmp_path / "task", opt=tmp_path / "opt", runtime=tmp_path / "runtime")


def problems(m: Mount, handler: str = "app.main.handle", python: str = "3.12", machine: str = "aarch64"):
    result = check_statically(m, handler, python=python, machine=machine)
    return [(f.problem, f.name) for f in result.findings]


OK_HANDLER = "def handle(event, context):\n    return 1\n"


# -- the standard library of each version ---------------------------------------------------------------


def test_the_stdlib_table_moves_forwards_and_backwards() -> None:
    base = frozenset({"os", "imp", "cgi", "tomllib"})
    assert stdlib_modules_from(base, (3, 11), (3, 12)) >= {"os", "cgi", "tomllib"}
    assert "imp" not in stdlib_modules_from(base, (3, 11), (3, 12))
    assert "cgi" not in stdlib_modules_from(base, (3, 11), (3, 13))
    assert {"annotationlib", "compression"} <= stdlib_modules_from(base, (3, 11), (3, 14))
    back = stdlib_modules_from(frozenset({"os", "annotationlib"}), (3, 14), (3, 11))
    assert {"imp", "distutils", "cgi", "telnetlib", "lib2to3"} <= back and "annotationlib" not in back
    assert stdlib_modules(f"{sys.version_info[0]}.{sys.version_info[1]}") == frozenset(sys.stdlib_module_names)


# -- the function's own code ----------------------------------------------------------------------------


def test_relative_and_absolute_imports_of_own_modules_are_followed(tmp_path: Path) -> None:
    m = mount(tmp_path, {
        "app/__init__.py": "from .settings import NAME\n",
        "app/settings.py": "NAME = 'x'\n",
        "app/main.py": "from . import db\nfrom .. import nothing_above\n" + OK_HANDLER,
        "app/db/__init__.py": "from app.db.engine import connect\n",
        "app/db/engine.py": "import sqlalchemy\n\ndef connect():\n    pass\n",
    })
    found = problems(m)
    assert (Problem.MISSING, "sqlalchemy") in found  # two own modules away from the handler
    assert (Problem.RELATIVE, "..") in found  # above the top-level package `app`


def test_an_absent_own_submodule_is_named_in_full(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": "import app.gone.deeper\n" + OK_HANDLER})
    assert problems(m) == [(Problem.MISSING, "app.gone")]


def test_a_missing_handler_module_or_function(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": "def other(event, context):\n    pass\n"})
    assert problems(m) == [(Problem.NO_HANDLER, "handle")]
    assert problems(m, "app.absent.handle") == [(Problem.MISSING, "app.absent")]
    assert problems(m, "service.main.handle") == [(Problem.MISSING, "service")]


@pytest.mark.parametrize("binding", [
    "handle = make_handler()\n", "from app.impl import handle\n", "if True:\n    def handle(e, c):\n        pass\n",
    "try:\n    from fast import handle\nexcept ImportError:\n    handle = None\n", "def __getattr__(name):\n    pass\n",
    "class handle:\n    pass\n", "handle: object = None\n", "for handle in [print]:\n    pass\n",
])
def test_the_handler_may_be_bound_any_way_at_module_level(tmp_path: Path, binding: str) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/impl.py": OK_HANDLER,
                         "app/main.py": "def make_handler():\n    return print\n" + binding})
    assert problems(m) == []


def test_imports_in_class_bodies_run_and_in_functions_do_not(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": (
        "class Config:\n    import at_class_time\n\n"
        "def later():\n    import at_call_time\n\n" + OK_HANDLER)})
    assert problems(m) == [(Problem.MISSING, "at_class_time")]


def test_version_and_platform_tests_are_decided_for_the_target(tmp_path: Path) -> None:
    code = ("import sys\n"
            "if sys.version_info < (3, 13):\n    import only_before_313\n"
            "if sys.version_info[:2] >= (3, 13):\n    import only_from_313\n"
            "if sys.platform == 'win32':\n    import winreg\n"
            "if not sys.platform.startswith('linux'):\n    import not_on_linux\n" + OK_HANDLER)
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": code})
    assert problems(m, python="3.12") == [(Problem.MISSING, "only_before_313")]
    assert problems(m, python="3.14") == [(Problem.MISSING, "only_from_313")]


def test_namespace_packages_span_the_bundle_and_layers(tmp_path: Path) -> None:
    m = mount(tmp_path, {"acme/orders/__init__.py": "", "acme/orders/main.py": "import acme.shared.util\n" + OK_HANDLER},
              {"python/acme/shared/__init__.py": "", "python/acme/shared/util.py": "import missing_in_layer\n"})
    assert problems(m, "acme.orders.main.handle") == [(Problem.MISSING, "missing_in_layer")]


def test_the_layers_site_packages_and_the_provided_sdk_are_found(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": "import boto3\nimport dateutil\nimport vendored\n" + OK_HANDLER},
              {"python/lib/python3.12/site-packages/vendored/__init__.py": ""})
    result = check_statically(m, "app.main.handle", python="3.12", machine="aarch64")
    assert result.ok, result.findings
    assert result.imports == {"bundle": 1, "layers": 1, "sdk": 2}


def test_newer_syntax_than_this_python_reads_is_said_not_failed(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": "type Alias = list[int]\n" + OK_HANDLER})
    if sys.version_info >= (3, 12):
        pytest.skip("this Python reads 3.12 syntax")
    result = check_statically(m, "app.main.handle", python="3.12", machine="aarch64")
    assert result.ok and result.unparsed == ("/var/task/app/main.py",)
    assert problems(m, python="3.11") == [(Problem.SYNTAX, "app.main")]


# -- native files ---------------------------------------------------------------------------------------


def test_extension_suffixes_and_elf_machines(tmp_path: Path) -> None:
    assert extension_suffixes("3.14", "aarch64") == (".cpython-314-aarch64-linux-gnu.so", ".abi3.so", ".so")
    assert split_extension("_core.cpython-312-x86_64-linux-gnu.so") == ("_core", ".cpython-312-x86_64-linux-gnu.so")
    assert split_extension("core.py") is None
    lib = tmp_path / "lib.so"
    lib.write_bytes(fake_elf("aarch64"))
    assert elf_machine(lib) == "aarch64"
    lib.write_bytes(b"not elf")
    assert elf_machine(lib) is None


def test_an_imported_extension_for_another_python_is_foreign(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": "from app import _speed\n" + OK_HANDLER,
                         "app/_speed.cpython-313-aarch64-linux-gnu.so": fake_elf("aarch64")})
    assert problems(m, python="3.12") == [(Problem.FOREIGN, "_speed")]
    assert problems(m, python="3.13") == []


def test_vendored_libraries_must_be_for_the_target_machine(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": OK_HANDLER,
                         "numpy.libs/libopenblas-1a2b.so.0": fake_elf("x86_64"),
                         "helpers/attach_linux_x86.so": fake_elf("x86_64")})  # untagged, never imported: left alone
    assert problems(m) == [(Problem.FOREIGN, "libopenblas-1a2b.so.0")]


# -- distributions --------------------------------------------------------------------------------------


def dist(name: str, *requires: str) -> InstalledDistribution:
    return InstalledDistribution(name=name, version="1.0", where="bundle", requires=requires, top_level=(name,))


def test_requirements_evaluated_for_the_target_and_requested_extras() -> None:
    dists = (
        dist("requests", "urllib3<3,>=1.21", "charset-normalizer<4,>=2", 'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
             'win-inet-pton; sys_platform == "win32" and extra == "socks"'),
        dist("urllib3"),
        dist("httpx", "requests[socks]", 'uvloop; platform_machine == "x86_64"', 'exceptiongroup; python_version < "3.11"'),
    )
    missing, held = missing_requirements(dists, ("boto3",), python="3.12", machine="aarch64")
    assert sorted(m.name for m in missing) == ["PySocks", "charset-normalizer"]
    assert {m.required_by.name for m in missing} == {"requests"}
    assert held == 4  # urllib3, charset-normalizer, PySocks (asked for by httpx), requests[socks]
    missing, _ = missing_requirements(dists, (), python="3.12", machine="x86_64")
    assert "uvloop" in {m.name for m in missing}
    missing, _ = missing_requirements(dists, (), python="3.10", machine="aarch64")
    assert "exceptiongroup" in {m.name for m in missing}


def test_provided_distributions_meet_requirements_by_canonical_name() -> None:
    dists = (dist("s3fs", "Boto3>=1.20", "python_dateutil"),)
    missing, _ = missing_requirements(dists, ("boto3", "python-dateutil"), python="3.12", machine="aarch64")
    assert missing == ()


def test_an_undecidable_if_is_followed_and_the_failure_says_how_to_make_it_optional(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/main.py": (
        "import os\nif os.environ.get('LOCAL'):\n    import dotenv\n" + OK_HANDLER)})
    [finding] = check_statically(m, "app.main.handle", python="3.12", machine="aarch64").findings
    assert finding.name == "dotenv" and "try/except ImportError" in finding.where


def test_imports_after_a_sys_path_change_are_said_unresolved_not_failed(tmp_path: Path) -> None:
    m = mount(tmp_path, {"app/__init__.py": "", "app/vendor/thing.py": "", "app/main.py": (
        "import os, sys\nimport before_the_change\n"
        "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'vendor'))\nimport thing\n" + OK_HANDLER)})
    result = check_statically(m, "app.main.handle", python="3.12", machine="aarch64")
    assert [(f.problem, f.name) for f in result.findings] == [(Problem.MISSING, "before_the_change")]
    assert result.unresolved == ("thing (/var/task/app/main.py:4, after sys.path was changed)",)
