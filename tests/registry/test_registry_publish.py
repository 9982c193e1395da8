"""Publishing: layout, no-op, conflicts, request counts."""

from __future__ import annotations

import hashlib
import json

import pytest
from registry_helpers import make_dist

from builder import schemas
from builder.aws.session import RequestCounter
from builder.errors import UsageError, VersionConflict
from builder.registry.catalog import Catalog


def test_publish_writes_the_layout_and_every_blob_hashes_to_its_manifest(workspace):
    result = workspace.publish("1.0.0")

    assert result.status == "published"
    keys = workspace.stored_keys()
    assert "relay/shop/releases/1.0.0.json" in keys
    assert "relay/shop/releases/1.0.0.dsse.json" in keys
    for fn in ("orders", "billing"):
        for name in ("manifest.json", "manifest.dsse.json", "sbom.cdx.json"):
            assert f"relay/shop/functions/{fn}/1.0.0/{name}" in keys
    release = json.loads(workspace.get("relay/shop/releases/1.0.0.json"))
    assert schemas.errors("release", release) == []
    assert set(release["functions"]) == {"orders", "billing"}
    assert set(release["layers"]) == {"layer-common-x86_64", "layer-common-arm64"}
    for entry in [*release["functions"].values(), *release["layers"].values()]:
        manifest = json.loads(workspace.get(f"relay/{entry['manifest']}"))
        assert schemas.errors("manifest", manifest) == []
        blob = workspace.get(f"relay/blobs/sha256/{manifest['sha256']}")
        assert hashlib.sha256(blob).hexdigest() == manifest["sha256"] == entry["sha256"]
    orders = json.loads(workspace.get("relay/shop/functions/orders/1.0.0/manifest.json"))
    assert orders["version"] == "1.0.0"
    layer = json.loads(workspace.get(f"relay/{release['layers']['layer-common-x86_64']['manifest']}"))
    assert layer["version"] is None
    envelope = json.loads(workspace.get("relay/shop/releases/1.0.0.dsse.json"))
    assert schemas.errors("envelope", envelope) == []


def test_same_version_same_bytes_is_a_noop_costing_one_s3_request(workspace):
    workspace.publish("1.0.0")
    before = workspace.snapshot()
    counter = RequestCounter()

    result = workspace.publish("1.0.0", store=workspace.store(counter))

    assert result.status == "unchanged"
    assert "same bytes" in result.note
    assert counter.for_service("s3") == 1, counter.by_operation()
    assert workspace.snapshot() == before


def test_same_version_other_bytes_is_refused_and_changes_nothing(workspace):
    workspace.publish("1.0.0")
    before = workspace.snapshot()
    make_dist(workspace.root, variant="b")

    with pytest.raises(VersionConflict) as caught:
        workspace.publish("1.0.0")

    assert caught.value.exit_code == 7
    assert "orders" in caught.value.message and "billing" in caught.value.message
    assert workspace.snapshot() == before


def test_a_second_version_reuses_blobs_and_layer_manifests(workspace):
    workspace.publish("1.0.0")
    make_dist(workspace.root, variant="b")

    result = workspace.publish("1.1.0")

    by_name = {(b.kind, b.name, b.architecture): b for b in result.bundles}
    assert by_name[("layer", "common", "x86_64")].blob == "present"
    assert by_name[("layer", "common", "x86_64")].docs == "present"
    assert by_name[("function", "orders", "x86_64")].blob == "uploaded"
    assert [e.version for e in Catalog(workspace.store(), "shop").releases()] == ["1.1.0", "1.0.0"]


def test_build_metadata_alone_cannot_make_a_second_version(workspace):
    workspace.publish("1.0.0+build.1")
    make_dist(workspace.root, variant="b")
    with pytest.raises(VersionConflict, match="same precedence"):
        workspace.publish("1.0.0+build.2")


@pytest.mark.parametrize("bad", ["v1.2.3", "1.2", "01.2.3", "1.2.3-", "latest", ""])
def test_a_bad_version_string_is_a_usage_error(workspace, bad):
    with pytest.raises(UsageError) as caught:
        workspace.publish(bad)
    assert caught.value.exit_code == 2
    assert "semantic version" in caught.value.message


class _Steps:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.notes: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_a_large_bundle_goes_up_in_parts_with_progress_and_verifies(workspace):
    import random

    from builder.aws.s3 import MiB, TransferSettings
    from builder.registry.factory import open_signer, open_store, trusted_keys
    from builder.registry.publish import VersionRequest, publish
    from builder.registry.verify import verify_release

    make_dist(workspace.root, extra_files={"orders/model.bin": random.Random(5).randbytes(12 * MiB)})
    project = workspace.project()
    store = open_store(project, transfer=TransferSettings(multipart_threshold=6 * MiB, part_size=5 * MiB))
    steps = _Steps()

    result = publish(project, store, open_signer(project, store), VersionRequest(version="1.0.0"), reporter=steps)

    assert result.status == "published"
    assert any(s.startswith("uploading orders.zip") for s in steps.steps)
    assert {"orders.zip: part 1/3", "orders.zip: part 3/3"} <= set(steps.steps)
    assert verify_release(store, "shop", "1.0.0", trusted_keys(project)).ok


def test_a_layer_manifest_left_by_another_build_is_adopted_and_completed(workspace):
    from registry_helpers import COMMIT

    from builder.registry.factory import trusted_keys
    from builder.registry.verify import verify_release

    # Another build (another commit, same layer bytes) died right after writing the layer's manifest.
    dist = workspace.root / "dist"
    theirs = json.loads((dist / "layer-common-x86_64.manifest.json").read_text())
    theirs["git"]["commit"] = COMMIT.replace("0", "f")
    key = f"relay/shop/layers/common/x86_64/{theirs['sha256']}/manifest.json"
    workspace.put(key, (json.dumps(theirs, indent=2, sort_keys=True) + "\n").encode())

    result = workspace.publish("1.0.0")

    layer = next(b for b in result.bundles if (b.name, b.architecture) == ("common", "x86_64"))
    assert layer.docs == "adopted"
    assert json.loads(workspace.get(key))["git"]["commit"] == theirs["git"]["commit"]
    assert verify_release(workspace.store(), "shop", "1.0.0", trusted_keys(workspace.project())).ok
