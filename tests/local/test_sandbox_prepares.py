"""`relay local up` on a running sandbox prepares what relay.toml needs now, and keeps what it holds.

The story of issue 12: a project adds an environment after its sandbox is up.
`up` again must make that environment's deployer and execution roles (the
promotion to it works), say what it prepared, and keep the published
releases and the sandbox's own key (down + up, the old way out, wiped both).
Commands run in-process (`relay_cli`): the sandbox's server is a real process.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from test_sandbox import moto_pids, project  # noqa: F401  (project is a fixture)

QA = textwrap.dedent("""
    [environments.qa]
    account = "444444444444"
    region = "us-east-1"
    role = "arn:aws:iam::444444444444:role/relay-deployer"
    """)


def test_up_again_after_adding_an_environment_prepares_it_and_keeps_releases_and_key(
    project: Path, relay_cli, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")] + ["RELAY_SIGNING_KEY"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(project.parent / "cache"))

    def relay(*args: str):
        done = relay_cli(*args, cwd=project)
        assert done.code == 0, done
        return done

    first = relay("local", "up", "--json").json()
    port = int(first["endpoint"].rsplit(":", 1)[1])
    try:
        assert first["started"] is True
        assert {p["kind"] for p in first["prepared"]} == {"registry bucket", "deployer role", "execution role"}
        relay("build")
        relay("publish", "--bump", "patch")
        with open(project / "relay.toml", "a", encoding="utf-8") as config:
            config.write(QA)

        again = relay("local", "up")
        assert "already running" in again.stdout
        assert "prepared deployer role for qa: arn:aws:iam::444444444444:role/relay-deployer" in again.stdout
        assert "prepared execution role for qa: arn:aws:iam::444444444444:role/sandy-exec" in again.stdout
        assert "staging" not in again.stdout.split("\n", 1)[1], "what existed is not reported as prepared"

        state = json.loads((project / ".relay/local.json").read_text())
        assert state["pid"] == first["pid"] and state["trusted_key"]["keyid"] == first["signing_key"]["keyid"]
        listing = relay("versions", "--json").json()
        assert "0.0.1" in json.dumps(listing), "the release published before the second up is still there"
        promoted = relay("promote", "0.0.1", "--to", "qa")  # needs qa's deployer and execution roles
        assert "Promoted sandy@0.0.1 to qa" in promoted.stdout

        third = relay("local", "up", "--json").json()
        assert third["started"] is False and not [p for p in third["prepared"] if p["new"]]
        assert "nothing to prepare" in relay("local", "up").stdout
    finally:
        relay_cli("local", "down", cwd=project)
    assert moto_pids(port) == []
