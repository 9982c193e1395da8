"""Finding interpreters, and relay's pip-tools venv per Python version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builder.bundle import pythons
from builder.bundle.subproc import run
from builder.errors import BuildFailed, LockError
from builder.paths import cache_dir

CREATE = (
    "import sys; from builder.bundle import pythons; "
    "print(pythons.tool_python('{v}', pythons.find_python('{v}')))"
)


def test_find_python_returns_a_working_interpreter_of_that_version() -> None:
    running = pythons.running_version()
    found = pythons.find_python(running)
    assert found is not None
    out = run([found, "-c", "import sys; print(sys.version_info[:2])"], step="t").stdout
    assert out.strip() == str(sys.version_info[:2])


def test_find_python_skips_shims_and_folders_that_do_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pyenv-style shim that exists on PATH but fails, as pyenv's do for versions not selected.
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.99"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(shims))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    (tmp_path / "pyenv" / "versions" / "3.99.1" / "bin").mkdir(parents=True)
    pythons.find_python.cache_clear()
    try:
        assert pythons.find_python("3.99") is None
    finally:
        pythons.find_python.cache_clear()


def test_a_pyenv_shim_is_run_only_when_no_installed_version_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shim costs ~0.3 s per run (bash + pyenv) on every build that looks for the runtime's Python."""
    real = Path(sys.executable).resolve()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pyenv = tmp_path / "pyenv"
    (pyenv / "shims").mkdir(parents=True)
    ran = tmp_path / "shim-ran"
    shim = pyenv / "shims" / f"python{version}"
    shim.write_text(f"#!/bin/sh\necho x >> {ran}\nexec {real} \"$@\"\n")
    shim.chmod(0o755)
    installed = pyenv / "versions" / f"{version}.0" / "bin"
    installed.mkdir(parents=True)
    (installed / f"python{version}").symlink_to(real)
    monkeypatch.setenv("PATH", str(pyenv / "shims"))
    monkeypatch.setenv("PYENV_ROOT", str(pyenv))
    pythons.find_python.cache_clear()
    try:
        assert pythons.find_python(version) is not None
        assert not ran.exists()  # the installed version answered: the shim was never run
        (installed / f"python{version}").unlink()
        pythons.find_python.cache_clear()
        assert pythons.find_python(version) is not None  # only the shim left: it is still found
        assert ran.read_text().count("x") == 1
    finally:
        pythons.find_python.cache_clear()


def test_find_python_prefers_the_newest_pyenv_patch_release() -> None:
    paths = [Path(f"/p/versions/3.12.{n}/bin/python3.12") for n in (1, 10, 9)]
    assert sorted(paths, key=pythons._patch_key, reverse=True)[0].parts[3] == "3.12.10"


def test_user_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RELAY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "relay"
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_subprocess_failure_carries_the_stderr_tail() -> None:
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(40)]; sys.exit(3)"
    with pytest.raises(LockError) as caught:
        run([sys.executable, "-c", script], step="resolve", error=LockError, hint="look")
    assert caught.value.step == "resolve"
    assert "exited with 3" in caught.value.reason
    assert "line 39" in caught.value.reason and "line 10" not in caught.value.reason
    assert caught.value.hint == "look"
    with pytest.raises(BuildFailed, match="program not found"):
        run(["/nonexistent/tool"], step="x")
    assert run([sys.executable, "-c", "import sys; sys.exit(2)"], step="x", check=False).returncode == 2


@pytest.mark.network
def test_two_relay_runs_creating_the_tool_venv_at_once_both_get_a_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = "3.12" if pythons.running_version() != "3.12" else "3.13"
    if pythons.find_python(version) is None:
        pytest.skip(f"python{version} is not installed")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    code = CREATE.format(v=version)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    paths = {out.strip() for out, _ in outputs}
    assert paths == {str(tmp_path / "cache" / "tools" / f"py{version}" / "bin" / "python")}
    tool = Path(paths.pop())
    probe = "import importlib.metadata as m, piptools; print(m.version('pip-tools'))"
    assert run([tool, "-c", probe], step="t").stdout.strip() == pythons._wanted_packages()["pip-tools"]
    assert run([tool, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], step="t").stdout.strip() == version
    leftovers = [p.name for p in (tmp_path / "cache" / "tools").iterdir()]
    assert leftovers == [f"py{version}"]

    # A relay upgraded to another pip-tools replaces the venv rather than reusing it.
    marker = tool.parent.parent / "relay-tool.json"
    recorded = json.loads(marker.read_text())
    recorded["packages"]["pip-tools"] = "0.0.1"
    marker.write_text(json.dumps(recorded))
    assert pythons.tool_python(version, pythons.find_python(version)) == tool
    assert json.loads(marker.read_text())["packages"] == pythons._wanted_packages()
    assert [p.name for p in (tmp_path / "cache" / "tools").iterdir()] == [f"py{version}"]
