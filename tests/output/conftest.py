"""Output tests: the shop app of tests/promote, and relay run as a person runs it (a terminal, or CliRunner)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import Shop, new_shop


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


@attrs.frozen
class Seen:
    """What a person saw: exit code, and stdout and stderr as they were interleaved."""

    code: int
    output: str
    stdout: str = ""


@pytest.fixture
def person():
    """relay in-process (main(), its error handler and exit codes), not on a terminal.

    `output` is stdout and stderr in the order they were written, as a person at a terminal reads them.
    """
    from click.testing import CliRunner

    from builder.cli import main

    def run(*args: str, cwd: Path, input: str | None = None, env: dict[str, str] | None = None) -> Seen:
        with CliRunner().isolation(input=input, env=env) as (out, _err, mixed):
            try:
                main(["-C", str(cwd), *args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            return Seen(code, mixed.getvalue().decode(), out.getvalue().decode())

    return run


@pytest.fixture
def terminal():
    """relay in a pseudo-terminal of `columns` columns, answering `answer` to the first question it asks."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, answer: str | None = None,
            columns: int = 100, timeout: float = 240) -> Seen:
        import fcntl
        import pty
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        environ = {**os.environ, "TERM": "xterm-256color", **(env or {})}
        environ.pop("COLUMNS", None)
        proc = subprocess.Popen([sys.executable, "-m", "builder", "-C", str(cwd), *args], stdin=slave, stdout=slave,
                                stderr=slave, env=environ, close_fds=True)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # the child closed the terminal
                        break
                    if not chunk:
                        break
                    seen += chunk
                    if answer is not None and b"[y/N]" in seen:
                        os.write(master, answer.encode() + b"\n")
                        answer = None
                elif proc.poll() is not None:
                    break
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        return Seen(code, seen.decode(errors="replace").replace("\r\n", "\n"))

    return run
