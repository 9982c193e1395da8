"""The whole loop against `relay local`'s sandbox, as a user runs it: up, build, publish, promote, invoke --env, logs.

Processes of their own (`python -m builder`), no AWS_* variables: every command
finds the sandbox from the project's `.relay/` state. moto's Lambda writes no
logs (see test_remote_logs.py), so the line `relay logs` shows is put into
the alias version's stream with boto3, inside the sandbox's staging account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest

RELAY = [sys.executable, "-m", "builder"]
ROOT = Path(__file__).resolve().parents[2]

PROJECT = textwrap.dedent("""\
    [app]
    name = "kiosk"
    runtime = "python3.12"

    [functions.checkout]
    source = "src"
    handler = "kiosk.checkout.handle"
    role = "arn:aws:iam::{account}:role/kiosk-exec"

    [registry]
    bucket = "kiosk-artifacts"
    region = "us-east-1"

    [environments.staging]
    account = "222222222222"
    region = "us-east-1"
    role = "arn:aws:iam::222222222222:role/relay-deployer"
    """)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small app laid out like real ones: the handler inside a package, docs, a .gitignore."""
    root = tmp_path / "kiosk"
    (root / "src/kiosk").mkdir(parents=True)
    (root / "src/kiosk/__init__.py").write_text("")
    (root / "src/kiosk/checkout.py").write_text("def handle(event, context):\n    print('checkout', event)\n"
                                                "    return {'paid': True}\n")
    (root / "docs").mkdir()
    (root / "docs/index.md").write_text("# kiosk\n")
    (root / ".gitignore").write_text(".relay/\ndist/\n*.key\n")
    (root / "relay.toml").write_text(PROJECT)
    return root


def relay(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["RELAY_CACHE_DIR"] = str(root.parent / "cache")
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([*RELAY, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300, input=stdin)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args[3:]} -> {done.returncode}\n{done.stderr}"
    return done


def staging_logs(endpoint: str):
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    creds = sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/relay-deployer", RoleSessionName="relay-tests")["Credentials"]
    return boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def test_invoke_env_and_logs_against_the_local_sandbox(project: Path):
    endpoint = json.loads(ok(relay(project, "local", "up", "--json")).stdout)["endpoint"]
    try:
        ok(relay(project, "build"))
        ok(relay(project, "publish", "--version", "1.0.0"))
        ok(relay(project, "promote", "1.0.0", "--to", "staging"))

        invoked = ok(relay(project, "invoke", "checkout", "--env", "staging", "--event", "-", stdin='{"cart": 3}'))
        assert json.loads(invoked.stdout) == {"cart": 3}  # moto's Lambda without Docker returns the event
        assert f"using the local AWS at {endpoint}" in invoked.stderr
        assert "Invoked kiosk-checkout:live in staging (account 222222222222, us-east-1): version 1" in invoked.stderr

        logs = staging_logs(endpoint)
        logs.create_log_group(logGroupName="/aws/lambda/kiosk-checkout")
        stream = time.strftime("%Y/%m/%d", time.gmtime()) + "/[1]5f3c0a"
        logs.create_log_stream(logGroupName="/aws/lambda/kiosk-checkout", logStreamName=stream)
        logs.put_log_events(logGroupName="/aws/lambda/kiosk-checkout", logStreamName=stream,
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": "checkout {'cart': 3}"}])

        shown = ok(relay(project, "logs", "checkout", "--env", "staging"))
        assert shown.stdout.rstrip().endswith("[1] checkout {'cart': 3}")
        assert "alias live -> version 1; log group /aws/lambda/kiosk-checkout" in shown.stderr
    finally:
        relay(project, "local", "down")
