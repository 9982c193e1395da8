"""Every test on disk runs: a plain `pytest` collects every `def test_` of every `test_*.py` under tests/.

pytest silently skips folders named in its default `norecursedirs` (`build`,
`dist`, `venv`, `*.egg`, `.*`, ...), a test file that fails to import, and a
test in a class it does not collect: the 17 tests of the old `tests/build/`
never ran. So this runs the real collection in a subprocess (which imports
each test module, nothing more) and compares it with the source.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
TOOL_OUTPUT_NAMES = {"build", "dist", "venv"}


def defined_tests() -> set[str]:
    """`tests/x/test_y.py::test_f` and `...::TestC::test_f` for every test function the source defines."""
    found = set()
    for path in sorted(TESTS.rglob("test_*.py")):
        file_id = path.relative_to(ROOT).as_posix()
        found.add(file_id)  # a test file with no test in it is a mistake too
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.add(f"{file_id}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                found.update(f"{file_id}::{node.name}::{item.name}" for item in node.body
                             if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"))
    return found


def collected() -> tuple[set[str], str]:
    """What `pytest --collect-only` over tests/ finds, as ids without parameters, files included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=280, env=env,
    )
    ids = set()
    for line in done.stdout.splitlines():
        if "::" in line and not line.startswith(("ERROR", "FAILED")):
            test_id = re.sub(r"\[.*\]$", "", line.strip())
            ids.add(test_id)
            ids.add(test_id.split("::")[0])
    return ids, done.stdout[-4000:] + done.stderr[-2000:]


def test_pytest_collects_every_test_on_disk():
    expected = defined_tests()
    assert len(expected) > 300, "the source walk found almost no tests: it is looking in the wrong place"
    found, output = collected()
    missing = sorted(expected - found)
    assert not missing, f"{len(missing)} tests on disk that `pytest` does not collect:\n" + "\n".join(missing[:60]) + \
        f"\n\n{output}"


def test_no_test_folder_is_named_like_build_output():
    named = [str(p.relative_to(ROOT)) for p in TESTS.rglob("*")
             if p.is_dir() and (p.name in TOOL_OUTPUT_NAMES or p.name.endswith(".egg"))
             and "__pycache__" not in p.parts]
    assert not named, f"pytest's default norecursedirs skips these (and their tests): {named}"
