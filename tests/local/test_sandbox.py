"""`relay local up | status | down`, and other commands using the sandbox with no flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RELAY = [sys.executable, "-m", "builder"]

PROJECT = textwrap.dedent("""\
    [app]
    name = "sandy"
    runtime = "python3.12"

    [functions.hello]
    source = "functions/hello"
    handler = "hello.app.handle"
    role = "arn:aws:iam::{account}:role/sandy-exec"

    [registry]
    bucket = "sandy-artifacts"
    region = "us-east-1"

    [environments.staging]
    account = "222222222222"
    region = "us-east-1"
    role = "arn:aws:iam::222222222222:role/relay-deployer"
    """)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "sandy"
    (root / "functions/hello/hello").mkdir(parents=True)
    (root / "functions/hello/hello/__init__.py").write_text("")
    (root / "functions/hello/hello/app.py").write_text("def handle(event, context):\n    return 'hi'\n")
    (root / "relay.toml").write_text(PROJECT)
    return root


def relay(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["RELAY_CACHE_DIR"] = str(root.parent / "cache")
    done = subprocess.run([*RELAY, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"relay {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done


def moto_pids(port: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"moto.server" in cmdline and str(port).encode() in cmdline:
                found.append(int(proc.name))
    return found


def test_local_up_then_commands_need_no_endpoint_flags_and_down_leaves_nothing(project: Path) -> None:
    up = relay(project, "local", "up", "--json")
    state = json.loads(up.stdout)
    port = int(state["endpoint"].rsplit(":", 1)[1])
    try:
        assert moto_pids(port) == [state["pid"]]
        status = json.loads(relay(project, "local", "status", "--json").stdout)
        assert status["running"] is True and status["endpoint"] == state["endpoint"]

        first = relay(project, "build")
        assert "using the local AWS" in first.stderr, "says so the first time"
        published = relay(project, "publish", "--bump", "patch")
        assert "using the local AWS" not in published.stderr, "and only once"
        assert "sandy@0.0.1" in published.stdout
        listing = relay(project, "versions", "--json")
        assert "0.0.1" in listing.stdout
        relay(project, "verify", "0.0.1")
        promoted = relay(project, "promote", "0.0.1", "--to", "staging")
        assert "Promoted sandy@0.0.1 to staging" in promoted.stdout
        status = json.loads(relay(project, "status", "--json").stdout)
        assert "0.0.1" in json.dumps(status) and "drift" in json.dumps(status)

        # `up` again reuses the running server
        assert json.loads(relay(project, "local", "up", "--json").stdout)["pid"] == state["pid"]
    finally:
        relay(project, "local", "down")
    assert moto_pids(port) == []
    assert json.loads(relay(project, "local", "status", "--json").stdout)["running"] is False


def test_down_without_up_is_harmless(project: Path) -> None:
    done = relay(project, "local", "down")
    assert "stopped" in done.stdout
