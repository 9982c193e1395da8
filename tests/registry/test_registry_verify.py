"""`relay verify`: a published release passes; each kind of tampering fails, naming what."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from builder.errors import NotFound, VerificationFailed
from builder.registry.factory import trusted_keys
from builder.registry.signing import Ed25519Signer, Envelope, sign_envelope
from builder.registry.verify import ReleaseVerificationFailed, verify_release

ORDERS = "relay/shop/functions/orders/1.0.0/manifest.json"


def verify(workspace, version="1.0.0", **kwargs):
    return verify_release(workspace.store(), "shop", version, trusted_keys(workspace.project()), **kwargs)


def failed(workspace, version="1.0.0", **kwargs) -> ReleaseVerificationFailed:
    with pytest.raises(ReleaseVerificationFailed) as caught:
        verify(workspace, version, **kwargs)
    assert caught.value.exit_code == 8
    return caught.value


def test_a_published_release_verifies(workspace):
    workspace.publish("1.0.0")

    report = verify(workspace)

    assert report.ok
    subjects = {(c.subject, c.what) for c in report.checks}
    assert ("release shop@1.0.0", "signature") in subjects
    for subject in ("function orders", "function billing", "layer common (x86_64)", "layer common (arm64)"):
        assert {(subject, "manifest"), (subject, "signature"), (subject, "blob")} <= subjects


def test_verify_one_function_checks_it_and_its_layer_only(workspace):
    workspace.publish("1.0.0")

    report = verify(workspace, function="billing")

    subjects = {c.subject for c in report.checks}
    assert subjects == {"release shop@1.0.0", "function billing", "layer common (arm64)"}


def test_a_flipped_byte_in_a_blob_fails_naming_the_blob(workspace):
    workspace.publish("1.0.0")
    manifest = json.loads(workspace.get(ORDERS))
    key = f"relay/blobs/sha256/{manifest['sha256']}"
    data = bytearray(workspace.get(key))
    data[len(data) // 2] ^= 0x01
    workspace.put(key, bytes(data))

    error = failed(workspace)

    assert [(c.subject, c.what) for c in error.report.failures] == [("function orders", "blob")]
    assert "function orders blob" in error.message and manifest["sha256"][:16] in error.message


def test_an_edited_manifest_field_fails_naming_the_manifest(workspace):
    workspace.publish("1.0.0")
    manifest = json.loads(workspace.get(ORDERS))
    manifest["files"] += 1  # a field the release does not repeat: only the signature can tell
    workspace.put(ORDERS, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

    error = failed(workspace)

    assert [(c.subject, c.what) for c in error.report.failures] == [("function orders", "signature")]
    assert "manifest was changed" in error.message


def test_a_manifest_that_disagrees_with_the_release_fails(workspace):
    workspace.publish("1.0.0")
    manifest = json.loads(workspace.get(ORDERS))
    manifest["handler"] = "orders.evil.handle"
    workspace.put(ORDERS, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

    error = failed(workspace)

    assert ("function orders", "manifest") in [(c.subject, c.what) for c in error.report.failures]
    assert "handler" in error.message


def test_an_envelope_signed_by_an_untrusted_key_fails(workspace):
    workspace.publish("1.0.0")
    key = "relay/shop/functions/orders/1.0.0/manifest.dsse.json"
    stored = Envelope.from_bytes(workspace.get(key), what=key)
    intruder = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
    workspace.put(key, sign_envelope(stored.payload, intruder).to_bytes())

    error = failed(workspace)

    assert [(c.subject, c.what) for c in error.report.failures] == [("function orders", "signature")]
    assert f"untrusted key {intruder.keyid[:16]}" in error.message


def test_a_signature_moved_to_a_trusted_keyid_fails(workspace):
    workspace.publish("1.0.0")
    key = "relay/shop/releases/1.0.0.dsse.json"
    doc = json.loads(workspace.get(key))
    intruder = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
    forged = sign_envelope(base64.b64decode(doc["payload"]), intruder)
    doc["signatures"] = [{"keyid": workspace.key.keyid, "sig": base64.b64encode(forged.signatures[0].sig).decode()}]
    workspace.put(key, json.dumps(doc).encode())

    error = failed(workspace)

    assert ("release shop@1.0.0", "signature") in [(c.subject, c.what) for c in error.report.failures]
    assert "bad signature for trusted key" in error.message


def test_an_older_versions_valid_envelope_replayed_under_a_new_version_fails(workspace):
    workspace.publish("1.0.0")
    workspace.publish("1.1.0")  # the same bytes under a new version: subjects are identical
    for old, new in [("relay/shop/releases/1.0.0.dsse.json", "relay/shop/releases/1.1.0.dsse.json"),
                     ("relay/shop/functions/orders/1.0.0/manifest.dsse.json",
                      "relay/shop/functions/orders/1.1.0/manifest.dsse.json")]:
        workspace.put(new, workspace.get(old))

    error = failed(workspace, "1.1.0")

    failures = [(c.subject, c.what) for c in error.report.failures]
    assert failures == [("release shop@1.1.0", "signature"), ("function orders", "signature")]
    assert "shop@1.0.0, not shop@1.1.0" in error.message
    assert verify(workspace, "1.0.0").ok  # the original is untouched


def test_an_edited_release_document_fails(workspace):
    workspace.publish("1.0.0")
    key = "relay/shop/releases/1.0.0.json"
    doc = json.loads(workspace.get(key))
    doc["functions"]["orders"]["handler"] = "orders.other.handle"
    workspace.put(key, json.dumps(doc).encode())

    error = failed(workspace)

    assert "release document was changed" in error.message or "document" in error.message


def test_verifying_a_version_that_does_not_exist_is_not_found(workspace):
    with pytest.raises(NotFound):
        verify(workspace, "9.9.9")


def test_verify_without_trusted_keys_is_a_config_error(workspace):
    from builder.errors import ConfigError
    from builder.registry.signing import TrustedKeys

    workspace.publish("1.0.0")
    with pytest.raises(ConfigError):
        verify_release(workspace.store(), "shop", "1.0.0", TrustedKeys({}))


def test_a_trusted_key_whose_keyid_does_not_match_is_a_config_error(workspace):
    from builder.errors import ConfigError

    workspace.write_config(keyid="0" * 64)
    with pytest.raises(ConfigError, match="keyid"):
        trusted_keys(workspace.project())


def test_a_garbled_envelope_fails_naming_it(workspace):
    workspace.publish("1.0.0")
    workspace.put("relay/shop/releases/1.0.0.dsse.json", b"not json")
    with pytest.raises(VerificationFailed, match="releases/1.0.0.dsse.json: not a DSSE envelope"):
        verify(workspace)
