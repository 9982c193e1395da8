"""Promotion fixtures: the small shop app, built, wired to the moto accounts (see promote_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promote_helpers import Shop, new_shop


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


class RelayRun:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture
def relay_cli():
    """Run the relay CLI in-process, as a user would: exit code, stdout, stderr."""
    from click.testing import CliRunner

    from builder.cli import main

    def run(*args: str, cwd: Path | None = None) -> RelayRun:
        argv = [*(["-C", str(cwd)] if cwd else []), *args]
        runner = CliRunner()
        with runner.isolation() as streams:
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
        return RelayRun(code, out, err)

    return run
