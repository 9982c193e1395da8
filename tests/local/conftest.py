"""Fixtures for `relay invoke`, `relay init` and the Dockerfile: small real projects, built for real.

The projects have no third-party requirements (a layer with a local package
only), so they build offline; each is built once per module with relay's own
build, into a cache of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_helpers import build, make_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny app of local_helpers, built into its dist/ (module-wide: invoking never changes dist/)."""
    base = tmp_path_factory.mktemp("invoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELAY_CACHE_DIR", str(base / "cache"))
        root = make_app(base / "tiny")
        build(root)
        yield root


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RELAY_CACHE_DIR", str(cache))
    return cache


class RelayRun:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"RelayRun(code={self.code}, stdout={self.stdout[-800:]!r}, stderr={self.stderr[-800:]!r})"


@pytest.fixture
def relay():
    """The relay CLI in-process, as a user runs it: exit code, stdout, stderr (optional stdin)."""
    from click.testing import CliRunner

    from builder.cli import main

    def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> RelayRun:
        argv = [*(["-C", str(cwd)] if cwd else []), *args]
        with CliRunner().isolation(input=stdin) as streams:
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
        return RelayRun(code, out, err)

    return run


@pytest.fixture
def relay_script() -> Path:
    """The installed `relay` console script next to the running Python."""
    script = Path(sys.executable).parent / "relay"
    if not script.exists():
        pytest.skip("relay is not installed as a console script in this environment")
    return script
