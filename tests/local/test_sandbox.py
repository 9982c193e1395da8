"""`relay local up | status | down`, and other commands using the sandbox with no flags.

The sandbox is handed to the AWS sessions explicitly: commands say which
endpoint and which signing key they use, and leave the process environment
as they found it.
"""

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

        built = relay(project, "build")
        assert "local AWS" not in built.stderr, "a build talks to no AWS"
        published = relay(project, "publish", "--bump", "patch")
        assert published.stderr.count(f"using the local AWS at {state['endpoint']}") == 1, "says so, once"
        assert "sandy@0.0.1" in published.stdout
        keyid = json.loads((project / ".relay/local.json").read_text())["trusted_key"]["keyid"]
        assert published.stderr.count(f"signing with key {keyid[:16]} from relay local's key") == 1
        listing = relay(project, "versions", "--json")
        assert json.loads(listing.stdout), "stdout holds only the JSON document"
        assert "0.0.1" in listing.stdout and "using the local AWS" in listing.stderr
        relay(project, "verify", "0.0.1")
        promoted = relay(project, "promote", "0.0.1", "--to", "staging")
        assert "Promoted sandy@0.0.1 to staging" in promoted.stdout
        assert "using the local AWS" in promoted.stderr
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


def test_commands_against_the_sandbox_leave_the_environment_as_they_found_it(
    project: Path, relay_cli, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from builder.config import load_project
    from builder.local.lifecycle import local_down, local_up

    for name in [k for k in os.environ if k.startswith("AWS_")] + ["RELAY_SIGNING_KEY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(project.parent / "cache"))
    before = dict(os.environ)
    state = local_up(load_project(project / "relay.toml")).state
    try:
        assert dict(os.environ) == before, "relay local up"
        assert relay_cli("build", cwd=project).code == 0
        published = relay_cli("publish", "--bump", "patch", "--json", cwd=project)
        assert published.code == 0, published
        assert published.json()["version"] == "0.0.1"
        assert f"using the local AWS at {state.endpoint}" in published.stderr
        promoted = relay_cli("promote", "0.0.1", "--to", "staging", "--json", cwd=project)
        assert promoted.code == 0, promoted

        assert dict(os.environ) == before
    finally:
        local_down(project)


def test_an_exported_endpoint_elsewhere_wins_over_the_sandbox(project: Path) -> None:
    from builder.local.state import LocalState, read_sandbox, write_state

    write_state(project, LocalState(endpoint="http://127.0.0.1:1", pid=1, port=1, region="eu-west-1",
                                    registry_account="123456789012", signing_key=str(project / "k.pem"),
                                    trusted_key={"keyid": "ab", "public_key": "pem"}))

    assert read_sandbox(project, {"AWS_ENDPOINT_URL": "http://localhost:4566"}) is None
    sandbox = read_sandbox(project, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert sandbox is not None and sandbox.endpoint == "http://127.0.0.1:1" and sandbox.region == "eu-west-1"
    exported_region = read_sandbox(project, {"AWS_DEFAULT_REGION": "us-west-2"})
    assert exported_region is not None and exported_region.region == "us-west-2"


def test_an_exported_signing_key_wins_over_the_sandboxs(project: Path, tmp_path: Path) -> None:
    from builder.config import load_project
    from builder.local.accounts import make_signing_key
    from builder.local.state import LOCAL_CREDENTIALS, LocalSandbox
    from builder.registry.factory import choose_signer, trusted_keys
    from builder.registry.signing import generate_key_file

    key_path, trusted = make_signing_key(project)
    sandbox = LocalSandbox(endpoint="http://127.0.0.1:1", region="us-east-1", credentials=LOCAL_CREDENTIALS,
                           signing_key=key_path, trusted_key=trusted, state_file=project / ".relay/local.json")
    mine = generate_key_file(tmp_path / "mine.key")
    config = load_project(project / "relay.toml")

    chosen = choose_signer(config, None, sandbox=sandbox, environ={})  # type: ignore[arg-type]
    assert chosen.keyid == trusted.keyid and "relay local's key .relay/local-signing.key" in chosen.source
    exported = choose_signer(config, None, sandbox=sandbox,  # type: ignore[arg-type]
                             environ={"RELAY_SIGNING_KEY": str(tmp_path / "mine.key")})
    assert exported.keyid == mine.keyid and "RELAY_SIGNING_KEY" in exported.source
    assert trusted.keyid in trusted_keys(config, sandbox).keys
    assert trusted.keyid not in trusted_keys(config).keys, "the sandbox's key is trusted only when it is in use"


def test_a_configured_key_signs_in_local_mode_and_a_missing_one_is_an_error(project: Path, tmp_path: Path) -> None:
    """Local mode used to sign with the sandbox's key even when relay.toml named one: unverifiable elsewhere."""
    from builder.config import load_project
    from builder.errors import ConfigError
    from builder.local.accounts import make_signing_key
    from builder.local.state import LOCAL_CREDENTIALS, LocalSandbox
    from builder.registry.factory import choose_signer
    from builder.registry.signing import generate_key_file

    key_path, trusted = make_signing_key(project)
    sandbox = LocalSandbox(endpoint="http://127.0.0.1:1", region="us-east-1", credentials=LOCAL_CREDENTIALS,
                           signing_key=key_path, trusted_key=trusted, state_file=project / ".relay/local.json")
    with open(project / "relay.toml", "a", encoding="utf-8") as config:
        config.write('\n[registry.signing]\nkind = "ed25519"\nkey = "keys/team.key"\n')

    with pytest.raises(ConfigError, match="no such file"):
        choose_signer(load_project(project / "relay.toml"), None, sandbox=sandbox, environ={})  # type: ignore[arg-type]

    team = generate_key_file(project / "keys/team.key")
    chosen = choose_signer(load_project(project / "relay.toml"), None, sandbox=sandbox, environ={})  # type: ignore[arg-type]
    assert chosen.keyid == team.keyid != trusted.keyid
    assert chosen.source == "relay.toml [registry.signing] keys/team.key"
