"""`relay publish` refuses to sign with a key relay.toml does not trust, before writing anything.

Before issue 12 such a publish succeeded: the version was taken by a release
nobody could verify, and the next `publish --bump patch` said "nothing to do",
so CI went on promoting an unverifiable release.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from registry_helpers import RELAY, Workspace

from builder.registry.factory import open_store, trusted_keys
from builder.registry.publish import VersionRequest, publish
from builder.registry.signing import SIGNING_KEY_ENV, UntrustedSigningKey, generate_key_file, signing_key_from_env


def test_the_library_refuses_an_untrusted_signer_and_writes_nothing(workspace: Workspace) -> None:
    stranger = generate_key_file(workspace.root / "keys" / "stranger.key")
    signer = signing_key_from_env({SIGNING_KEY_ENV: str(stranger.private_path)})
    assert signer is not None
    project = workspace.project()
    before = workspace.stored_keys("")

    with pytest.raises(UntrustedSigningKey, match=stranger.keyid[:16]) as refused:
        publish(project, open_store(project), signer, VersionRequest(bump="patch"), trusted=trusted_keys(project))

    assert refused.value.exit_code == 3 and "trusted_keys" in refused.value.hint
    assert workspace.stored_keys("") == before
    # The default trust is the config's: a caller that passes none is checked too.
    with pytest.raises(UntrustedSigningKey):
        publish(project, open_store(project), signer, VersionRequest(bump="patch"))
    assert workspace.stored_keys("") == before


def test_the_cli_refuses_before_any_write_and_the_next_trusted_publish_takes_the_version(workspace: Workspace) -> None:
    stranger = generate_key_file(workspace.root / "keys" / "stranger.key")
    before = len(workspace.stored_keys(""))

    refused = subprocess.run([str(RELAY), "-C", str(workspace.root), "publish", "--bump", "patch"],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, SIGNING_KEY_ENV: str(stranger.private_path)})

    assert refused.returncode == 3, refused.stderr
    assert f"signing with key {stranger.keyid[:16]} from {SIGNING_KEY_ENV}=" in refused.stderr
    assert "is not in [[registry.trusted_keys]]" in refused.stderr and "hint:" in refused.stderr
    assert len(workspace.stored_keys("")) == before, "nothing was written to the registry"

    published = workspace.relay("publish", "--bump", "patch")  # relay.toml's own, trusted key
    assert published.returncode == 0, published.stderr
    assert "shop@0.0.1" in published.stdout, "no version was burnt by the refusal"
    assert f"signing with key {workspace.key.keyid[:16]} from relay.toml [registry.signing] keys/relay.key" \
        in published.stderr
