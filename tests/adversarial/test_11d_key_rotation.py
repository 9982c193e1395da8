"""Issue 11, item 6: the signing key can be rotated without trusting the old key forever.

An unchanged layer keeps the manifest and envelope of the release that first
stored it, signed by the key of that time. The release statement of every new
release vouches, by digest, for each manifest and SBOM it uses, so a release
signed by the new key verifies and promotes with only the new key trusted,
while the older release still needs the old key. A retired key verifies what
it signed and never signs anything new.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote"))

from promote_helpers import BUCKET, Shop, new_shop

from builder.errors import ConfigError, VerificationFailed
from builder.registry.diff import diff_versions
from builder.registry.factory import trusted_keys
from builder.registry.signing import Envelope, generate_key_file
from builder.registry.verify import ReleaseVerificationFailed, verify_release


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def trust(shop: Shop, *, sign_with: str, entries: list[tuple[str, str, str]]) -> None:
    """relay.toml signing with keys/<sign_with> and trusting `entries` (file stem, keyid, extra TOML lines)."""
    text = shop.config.read_text(encoding="utf-8")
    head = text[: text.index("[[registry.trusted_keys]]")]
    tail = text[text.index("[environments."):]
    head = head.replace('key = "keys/relay.key"', f'key = "keys/{sign_with}"')
    pinned = "".join(f'[[registry.trusted_keys]]\nkeyid = "{keyid}"\npublic_key = "keys/{stem}.pub"\n{extra}\n'
                     for stem, keyid, extra in entries)
    shop.config.write_text(head + pinned + tail, encoding="utf-8")


def verify(shop: Shop, version: str):
    return verify_release(shop.store(), "shop", version, trusted_keys(shop.project()))


def envelope_keyid(shop: Shop, key: str) -> str:
    body = shop.client("registry", "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return Envelope.from_bytes(body, what=key).signatures[0].keyid


def test_a_release_signed_by_the_new_key_verifies_and_promotes_with_only_the_new_key_trusted(shop):
    old = shop.key
    shop.publish("1.0.0")  # key A
    new = generate_key_file(shop.root / "keys" / "b.key")
    trust(shop, sign_with="b.key", entries=[("relay.key", old.keyid, 'retired = true\nnote = "CI key 2025"'),
                                           ("b.key", new.keyid, 'note = "CI key 2026"')])
    shop.set_code("orders", "b")  # the layer stays the same bytes: its manifest is adopted, signed by A
    shop.publish("1.1.0")
    listed = shop.client("registry", "s3").list_objects_v2(Bucket=BUCKET, Prefix="relay/shop/layers/")["Contents"]
    layer_envelopes = [o["Key"] for o in listed if o["Key"].endswith("manifest.dsse.json")]
    assert layer_envelopes and all(envelope_keyid(shop, key) == old.keyid for key in layer_envelopes)
    assert envelope_keyid(shop, "relay/shop/releases/1.1.0.dsse.json") == new.keyid

    trust(shop, sign_with="b.key", entries=[("b.key", new.keyid, 'note = "CI key 2026"')])
    report = verify(shop, "1.1.0")
    layers = [c for c in report.checks if c.subject.startswith("layer") and c.what == "signature"]
    assert layers and all(old.keyid[:16] in c.detail and "vouched for by the release" in c.detail for c in layers)
    release = next(c for c in report.checks if c.subject.startswith("release") and c.what == "signature")
    assert new.keyid[:16] in release.detail and "CI key 2026" in release.detail
    shop.promote("1.1.0", "staging")
    released = {name: f["code_sha256"] for name, f in shop.release("1.1.0")["functions"].items()}
    assert shop.live_code("staging", "orders") == released["orders"]

    # 1.0.0 was signed by A alone: it needs A.
    with pytest.raises(ReleaseVerificationFailed, match="untrusted key"):
        verify(shop, "1.0.0")
    trust(shop, sign_with="b.key", entries=[("relay.key", old.keyid, "retired = true"), ("b.key", new.keyid, "")])
    report = verify(shop, "1.0.0")
    assert any("retired" in c.detail and old.keyid[:16] in c.detail for c in report.checks)


def test_a_vouched_layer_whose_manifest_was_swapped_fails(shop):
    shop.publish("1.0.0")
    new = generate_key_file(shop.root / "keys" / "b.key")
    trust(shop, sign_with="b.key", entries=[("b.key", new.keyid, "")])
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    s3 = shop.client("registry", "s3")
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="relay/shop/layers/")["Contents"]
               if o["Key"].endswith("/manifest.json"))
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    doc["files"] += 1  # an attacker edits the old-key layer manifest, hoping the untrusted envelope goes unnoticed
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc, sort_keys=True).encode())
    with pytest.raises(ReleaseVerificationFailed, match="not the one the release signed"):
        verify(shop, "1.1.0")


def test_a_retired_key_never_signs_a_new_release(shop):
    shop.publish("1.0.0")
    trust(shop, sign_with="relay.key", entries=[("relay.key", shop.key.keyid, "retired = true")])
    shop.set_code("orders", "b")
    with pytest.raises(ConfigError, match="retired"):
        shop.publish("1.1.0")
    assert verify(shop, "1.0.0").ok  # it still verifies what it signed


def test_relay_diff_of_two_new_key_releases_reads_the_old_key_layer_through_the_release(shop):
    shop.publish("1.0.0")  # key A
    new = generate_key_file(shop.root / "keys" / "b.key")
    trust(shop, sign_with="b.key", entries=[("b.key", new.keyid, "")])
    shop.set_code("orders", "b")
    shop.publish("1.1.0")  # key B; the unchanged layer keeps A's envelope
    shop.set_code("orders", "c")
    shop.publish("1.2.0")
    trusted = trusted_keys(shop.project())

    changed = diff_versions(shop.store(), "shop", "1.1.0", "1.2.0", trusted)

    assert [(b.kind, b.name) for b in changed.differences] == [("function", "orders")]
    with pytest.raises(VerificationFailed, match="untrusted|trusted key"):
        diff_versions(shop.store(), "shop", "1.0.0", "1.1.0", trusted)  # 1.0.0 itself needs key A
