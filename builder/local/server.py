"""The sandbox's moto server: a process started in its own session that outlives the command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from builder.errors import ConfigError, RelayError
from builder.local.state import STATE_DIR, LocalState

START_TIMEOUT = 60.0


class LocalAwsError(RelayError):
    exit_code = 11
    hint = "See .relay/moto.log; `relay local down` then `relay local up` starts afresh."


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int) -> int:
    """Start `python -m moto.server` on 127.0.0.1:port, logging to .relay/moto.log; its pid."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ConfigError("moto[server] is not installed", hint="pip install 'lambda-relay[local]'") from None
    log = root / STATE_DIR / "moto.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # outlives this command; `relay local down` stops it
        )
    return proc.pid


def wait_until_up(endpoint: str, pid: int, root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise LocalAwsError(f"the moto server exited at start; see {root / STATE_DIR / 'moto.log'}")
        try:
            call(f"{endpoint}/moto-api/", method="GET")
            return
        except OSError:
            time.sleep(0.1)
    raise LocalAwsError(f"the moto server did not answer on {endpoint} within {START_TIMEOUT:.0f}s")


def configure(endpoint: str) -> None:
    """Lambda without Docker: functions are created and versioned, not run."""
    call(f"{endpoint}/moto-api/config", {"lambda": {"use_docker": False}})


def call(url: str, body: dict | None = None, *, method: str = "POST") -> bytes:
    import urllib.request  # here: few commands call moto's own API

    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read()


def alive(state: LocalState) -> bool:
    if not is_our_server(state):
        return False
    try:
        call(f"{state.endpoint}/moto-api/", method="GET")
        return True
    except OSError:  # urllib's URLError is an OSError
        return False


def is_our_server(state: LocalState) -> bool:
    """The pid is still the moto server `up` started on that port (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(state.pid) and sys.platform != "linux"
    return b"moto.server" in cmdline and str(state.port).encode() in cmdline


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):  # reap it when it is our child (same process, e.g. tests)
        os.waitpid(pid, os.WNOHANG)
