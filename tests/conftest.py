"""Shared fixtures: a real moto server on 127.0.0.1 and three AWS accounts.

The server is started once per test session (`python -m moto.server` on a free
port) and stopped at the end. Each test that asks for `aws` gets a reset
server and an environment pointing boto3 at it (AWS_ENDPOINT_URL, dummy
credentials, us-east-1, no profile). Accounts are reached as in real life, by
`sts.assume_role` into `arn:aws:iam::<account>:role/relay-...`: moto maps the
assumed credentials to the role's account.

Product code talks to AWS only through `builder.aws`; tests may use boto3
directly for setup and assertions (`aws.client("staging", "lambda")`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import attrs
import boto3
import pytest

from builder.local.server import call, free_port

# pytest-xdist runs its workers with COLUMNS=80; relay wraps human output to COLUMNS (as to a terminal),
# so tests see relay as a pipe sees it, whether the suite runs on one process or several.
os.environ.pop("COLUMNS", None)

REGION = "us-east-1"
ACCOUNTS = {"registry": "111111111111", "staging": "222222222222", "prod": "333333333333"}
ROLES = {"registry": "relay-publisher", "staging": "relay-deployer", "prod": "relay-deployer"}
_START_TIMEOUT = 60.0


def _wait_until_up(proc: subprocess.Popen, endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            call(f"{endpoint}/moto-api/", method="GET")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer on {endpoint} within {_START_TIMEOUT:.0f}s")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """`http://127.0.0.1:<port>` of a moto server that lives for the whole test session."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="relay-moto-"))
    log = log_dir / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_ACCOUNT_ID"}
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=log_fh, env=env,
        )
    try:
        _wait_until_up(proc, endpoint, log)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.unlink(missing_ok=True)
        log_dir.rmdir()


@attrs.frozen
class AwsAccounts:
    """The moto server of one test, and a way into each of its accounts."""

    endpoint: str
    accounts: dict[str, str] = attrs.field(factory=lambda: dict(ACCOUNTS))
    region: str = REGION

    def account(self, name: str) -> str:
        return self.accounts[name]

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.accounts[name]}:role/{ROLES[name]}"

    def session(self, name: str) -> boto3.Session:
        """A boto3 session inside account `name` (registry, staging or prod), by assume-role."""
        sts = boto3.client("sts", region_name=self.region)
        creds = sts.assume_role(RoleArn=self.role_arn(name), RoleSessionName="relay-tests")["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region,
        )

    def client(self, name: str, service: str):
        return self.session(name).client(service)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AwsAccounts:
    """A freshly reset moto server, with the environment pointing boto3 (and relay) at it."""
    call(f"{moto_endpoint}/moto-api/reset")
    call(f"{moto_endpoint}/moto-api/config", {"lambda": {"use_docker": False}})
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
                 "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # No ~/.aws files of the machine running the tests may leak in.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return AwsAccounts(moto_endpoint)


class RelayRun:
    """What a user sees of one relay command: exit code, stdout, stderr."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"RelayRun(code={self.code}, stdout={self.stdout[-800:]!r}, stderr={self.stderr[-800:]!r})"


def _run_relay(*args: str, cwd: Path | None = None, stdin: str | None = None) -> RelayRun:
    from click.testing import CliRunner

    from builder.entry import main  # the console script's way in: an unchanged build is answered from its stamp

    argv = [*(["-C", str(cwd)] if cwd else []), *args]
    with CliRunner().isolation(input=stdin) as streams:
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    return RelayRun(code, out, err)


@pytest.fixture
def relay():
    """Run the relay CLI in-process as a user would (main(), its error handler and exit codes)."""
    return _run_relay


@pytest.fixture
def relay_cli():
    """The same as `relay`, for suites where `relay` names something else."""
    return _run_relay
