"""The commands as a user runs them: output, --json and exit codes."""

from __future__ import annotations

import json
import stat
import subprocess

from cryptography.hazmat.primitives import serialization
from registry_helpers import RELAY, make_dist

from builder.registry.signing import keyid_of


def test_publish_verify_versions_round_trip(workspace):
    done = workspace.relay("publish", "--version", "1.0.0", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "published" and result["version"] == "1.0.0"
    assert {b["blob"] for b in result["bundles"]} == {"uploaded"}

    again = workspace.relay("publish", "--version", "1.0.0", "--json")
    assert again.returncode == 0, again.stderr
    noop = json.loads(again.stdout)
    assert noop["status"] == "unchanged"
    s3_requests = sum(n for op, n in noop["aws_requests"]["by_operation"].items() if op.startswith("s3."))
    assert s3_requests == 1, noop["aws_requests"]

    human = workspace.relay("publish", "--version", "1.0.0")
    assert human.returncode == 0 and "nothing to do" in human.stdout, (human.stdout, human.stderr)

    verified = workspace.relay("verify", "1.0.0")
    assert verified.returncode == 0, verified.stderr
    assert "verified" in verified.stdout and "function orders" in verified.stdout
    assert f"signed by trusted key {workspace.key.keyid[:16]}" in verified.stdout  # which key vouched, per check

    listing = workspace.relay("versions", "--json")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    assert [v["version"] for v in listed["versions"]] == ["1.0.0"]
    assert listed["versions"][0]["digests"]["orders"] == next(b["sha256"] for b in result["bundles"] if b["name"] == "orders")
    one = workspace.relay("versions", "orders")
    assert one.returncode == 0 and "orders" in one.stdout, (one.stdout, one.stderr)


def test_conflicting_publish_exits_7_and_failed_verification_exits_8(workspace):
    assert workspace.relay("publish", "--version", "1.0.0").returncode == 0
    make_dist(workspace.root, variant="b")

    conflict = workspace.relay("publish", "--version", "1.0.0")
    assert conflict.returncode == 7
    # stderr may first say which key signs; the error is one line of its own
    assert "\nerror: shop@1.0.0 is already published with other bytes" in "\n" + conflict.stderr, conflict.stderr
    assert "hint:" in conflict.stderr

    key = "relay/shop/functions/billing/1.0.0/manifest.json"
    manifest = json.loads(workspace.get(key))
    manifest["runtime"] = "python3.13"
    workspace.put(key, json.dumps(manifest).encode())
    failed = workspace.relay("verify", "1.0.0", "--json")
    assert failed.returncode == 8
    report = json.loads(failed.stdout)
    assert report["error"] == "ReleaseVerificationFailed"
    failing = [(c["subject"], c["what"]) for c in report["report"]["checks"] if not c["ok"]]
    assert ("function billing", "manifest") in failing
    assert "function billing" in failed.stderr


def test_usage_errors_exit_2(workspace):
    bad = workspace.relay("publish", "--version", "v1.0.0")
    assert bad.returncode == 2 and "not a semantic version" in bad.stderr and "Drop the leading 'v'" in bad.stderr
    both = workspace.relay("publish", "--version", "1.0.0", "--bump", "patch")
    assert both.returncode == 2
    missing = workspace.relay("verify", "3.0.0")
    assert missing.returncode == 12


def test_keygen_writes_a_private_key_0600_and_prints_the_trusted_key_entry(tmp_path):
    out = tmp_path / "keys" / "ci.key"
    done = subprocess.run([str(RELAY), "keygen", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    public = serialization.load_pem_public_key((tmp_path / "keys" / "ci.key.pub").read_bytes())
    keyid = keyid_of(public)
    assert f"keyid:       {keyid}" in done.stdout
    assert f'[[registry.trusted_keys]]\nkeyid = "{keyid}"\npublic_key = "ci.key.pub"' in done.stdout

    again = subprocess.run([str(RELAY), "keygen", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
    as_json = subprocess.run([str(RELAY), "keygen", "--out", str(out), "--force", "--json"], capture_output=True, text=True)
    assert json.loads(as_json.stdout)["keyid"] != keyid


def test_the_signing_key_can_come_from_the_environment(workspace, monkeypatch):
    workspace.write_config(signing="")
    monkeypatch.setenv("RELAY_SIGNING_KEY", workspace.key.private_path.read_text())
    assert workspace.relay("publish", "--version", "1.0.0").returncode == 0
    assert workspace.relay("verify", "1.0.0").returncode == 0

    monkeypatch.delenv("RELAY_SIGNING_KEY")
    unsigned = workspace.relay("publish", "--version", "1.0.1")
    assert unsigned.returncode == 3 and "no signing key" in unsigned.stderr


def test_publish_without_a_build_says_to_build(workspace):
    for path in (workspace.root / "dist").iterdir():
        path.unlink()
    done = workspace.relay("publish", "--version", "1.0.0")
    assert done.returncode == 2 and "relay build" in done.stderr
