"""Real locks against the package index, with pip-tools and (when installed) uv."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lock_helpers import copy_project, make_project, relay

from builder.bundle import pythons
from builder.commands.lock import lock_summary
from builder.config import load_project
from builder.lock.lockfile import input_sha256, read_lock
from builder.lock.resolve import TOOL_BANNER, lock_project
from builder.lock.resolvers import find_uv

pytestmark = pytest.mark.network

TINY_IN = "six\ncharset-normalizer==3.4.*\n"
MARKER_IN = 'six\ntyping-extensions; python_version < "3.12"\n'
needs_uv = pytest.mark.skipif(find_uv() is None, reason="uv is not installed")


def lock(root: Path, *names: str, resolver: str = "pip-tools", upgrade: bool = False):
    return lock_project(load_project(root / "relay.toml"), names, resolver=resolver, upgrade=upgrade)


def assert_portable(text: str) -> None:
    """Nothing in the lock depends on the host, the folder or the machine's pip config."""
    assert "/tmp" not in text and "/root" not in text and "/opt" not in text
    assert not re.search(r"^-(-index-url|-extra-index-url|-find-links|-trusted-host|i |f )", text, re.M)


@pytest.fixture(scope="module")
def tiny_locked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same project copied to two folders of different depth, each locked with pip-tools."""
    base = tmp_path_factory.mktemp("tiny")
    template = make_project(base / "template", function_in=TINY_IN)
    one = copy_project(template, base / "one")
    two = copy_project(template, base / "deep" / "er" / "two")
    for root in (one, two):
        result = lock(root)
        assert [o.status for o in result.outcomes] == ["locked"]
    return one, two


def test_pip_tools_lock_has_header_pins_and_every_platforms_hashes(tiny_locked: tuple[Path, Path]) -> None:
    root, _ = tiny_locked
    path = root / "functions/api/requirements.txt"
    text = path.read_text(encoding="utf-8")
    in_path = root / "functions/api/requirements.in"
    assert text.splitlines()[0] == f"# relay-lock: input-sha256={input_sha256(in_path)} runtime=python3.12"
    assert "resolved-under" not in text  # python3.12 is installed here (pyenv)
    assert text.splitlines()[1] == TOOL_BANNER  # the same whichever resolver ran
    assert "# via -r functions/api/requirements.in" in text
    assert_portable(text)
    lock = read_lock(path)
    names = {r.name: r for r in lock.requirements}
    assert set(names) == {"charset-normalizer", "six"}
    assert names["charset-normalizer"].version.startswith("3.4.")
    # compiled wheels for many platforms and Pythons, each with its hash
    assert len(names["charset-normalizer"].hashes) > 10
    assert names["six"].hashes


def test_the_same_project_in_two_folders_locks_to_identical_bytes(tiny_locked: tuple[Path, Path]) -> None:
    one, two = tiny_locked
    lock_name = "functions/api/requirements.txt"
    assert (one / lock_name).read_bytes() == (two / lock_name).read_bytes()


def test_check_after_lock_is_ok_then_stale_after_editing_the_in(
    tiny_locked: tuple[Path, Path], tmp_path: Path
) -> None:
    root = copy_project(tiny_locked[0], tmp_path / "copy")
    ok = relay("lock", "--check", cwd=root)
    assert ok.returncode == 0, ok.stderr
    with open(root / "functions/api/requirements.in", "a", encoding="utf-8") as fh:
        fh.write("idna\n")
    stale = relay("lock", "--check", cwd=root)
    assert stale.returncode == 6
    assert "functions/api/requirements.txt (stale" in stale.stderr
    (root / "functions/api/requirements.txt").unlink()
    missing = relay("lock", "--check", "--json", cwd=root)
    assert missing.returncode == 6 and '"status": "missing"' in missing.stdout


def test_relock_with_nothing_changed_leaves_the_file_alone(tiny_locked: tuple[Path, Path], tmp_path: Path) -> None:
    root = copy_project(tiny_locked[0], tmp_path / "copy")
    before = (root / "functions/api/requirements.txt").read_bytes()
    result = lock(root)
    assert [o.status for o in result.outcomes] == ["unchanged"]
    assert (root / "functions/api/requirements.txt").read_bytes() == before


def test_existing_pins_are_kept_unless_upgrading(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", function_in="six\n")
    (root / "functions/api/requirements.txt").write_text("six==1.16.0\n", encoding="utf-8")
    assert lock(root).outcomes[0].packages == ("six==1.16.0",)
    upgraded = lock(root, upgrade=True).outcomes[0].packages
    assert upgraded != ("six==1.16.0",) and upgraded[0].startswith("six==")


@pytest.mark.parametrize("resolver", ["pip-tools", pytest.param("uv", marks=needs_uv)])
def test_markers_are_evaluated_for_the_runtime_not_for_relays_python(tmp_path: Path, resolver: str) -> None:
    # typing-extensions is wanted only below 3.12: in a python3.11 lock, not in a 3.12 one,
    # whichever Python runs relay (and pip-compile runs under the runtime's own Python).
    packages = {}
    for runtime in ("python3.11", "python3.12"):
        if resolver == "pip-tools" and pythons.find_python(runtime.removeprefix("python")) is None:
            pytest.skip(f"{runtime} is not installed")
        root = make_project(tmp_path / runtime, runtime=runtime, function_in=MARKER_IN)
        outcome = lock(root, resolver=resolver).outcomes[0]
        assert outcome.python == runtime and outcome.resolver == resolver
        packages[runtime] = {p.split("==")[0] for p in outcome.packages}
    assert packages["python3.11"] == {"six", "typing-extensions"}
    assert packages["python3.12"] == {"six"}


def test_missing_runtime_python_falls_back_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running = pythons.running_version()
    runtime = "python3.13" if running != "3.13" else "python3.12"
    empty = tmp_path / "no-pythons"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(empty))
    pythons.find_python.cache_clear()
    try:
        assert pythons.find_python(runtime.removeprefix("python")) is None
        root = make_project(tmp_path / "p", runtime=runtime, function_in="six\n")
        result = lock(root)
    finally:
        pythons.find_python.cache_clear()
    text = (root / "functions/api/requirements.txt").read_text(encoding="utf-8")
    assert text.splitlines()[1] == f"# relay-lock: resolved-under=python{running}"
    assert read_lock(root / "functions/api/requirements.txt").resolved_under == f"python{running}"
    assert result.outcomes[0].python == f"python{running}"
    assert any(runtime in note and f"python{running}" in note for note in result.notes)
    assert "resolved under" in lock_summary(result)


@needs_uv
def test_uv_writes_the_same_format_pins_and_hashes_as_pip_tools(tiny_locked: tuple[Path, Path], tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", function_in=TINY_IN)
    result = lock(root, resolver="uv")
    assert result.outcomes[0].resolver == "uv"
    text = (root / "functions/api/requirements.txt").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("# relay-lock: input-sha256=")
    assert "# via -r functions/api/requirements.in" in text
    assert_portable(text)
    by_uv = read_lock(root / "functions/api/requirements.txt")
    by_pip_tools = read_lock(tiny_locked[0] / "functions/api/requirements.txt")
    assert by_uv.packages == by_pip_tools.packages
    assert by_uv.requirements == by_pip_tools.requirements  # same hashes too
    # and the very same bytes: a team mixing resolvers does not churn its locks
    assert text == (tiny_locked[0] / "functions/api/requirements.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(find_uv() is not None, reason="uv is installed")
def test_asking_for_uv_without_uv_says_how_to_get_it(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    done = relay("lock", "--resolver", "uv", cwd=root)
    assert done.returncode == 4
    assert "uv is not installed" in done.stderr and "pip install uv" in done.stderr


def test_a_bad_requirement_fails_with_the_tools_message(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", function_in="six==0.0.0.404\n")
    done = relay("lock", "--resolver", "pip-tools", cwd=root)
    assert done.returncode == 4, done.stderr
    assert "error: lock functions/api/requirements.in" in done.stderr
    assert "six" in done.stderr
    assert not (root / "functions/api/requirements.txt").exists()

