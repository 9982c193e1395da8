"""The remote build cache, the SBOM and the signed statement's shape."""

from __future__ import annotations

import base64
import json

from registry_helpers import BUCKET

from builder import schemas
from builder.aws.session import RequestCounter
from builder.models import Manifest
from builder.registry.cache import RemoteCache
from builder.registry.sbom import bundle_sbom


def _manifest(workspace, name: str = "orders") -> Manifest:
    doc = json.loads((workspace.root / "dist" / f"{name}.manifest.json").read_text())
    return Manifest.from_json(doc)


def test_remote_cache_round_trip(workspace):
    manifest = _manifest(workspace)
    zip_path = workspace.root / "dist" / "orders.zip"
    counter = RequestCounter()
    cache = RemoteCache(workspace.store(counter))

    assert cache.lookup("shop", manifest.build_key) is None
    assert cache.store("shop", manifest, zip_path) is True
    assert cache.store("shop", manifest, zip_path) is False
    counter.reset()
    found = cache.lookup("shop", manifest.build_key)

    assert found is not None
    assert found[0] == manifest and found[1] == zip_path.read_bytes()
    assert counter.for_service("s3") == 2  # the entry, then the blob
    assert f"relay/shop/cache/{manifest.build_key}.json" in workspace.stored_keys()


def test_remote_cache_treats_damaged_bytes_as_a_miss(workspace):
    manifest = _manifest(workspace)
    cache = RemoteCache(workspace.store())
    cache.store("shop", manifest, workspace.root / "dist" / "orders.zip")
    workspace.put(f"relay/blobs/sha256/{manifest.sha256}", b"not the zip")

    assert cache.lookup("shop", manifest.build_key) is None


def test_sbom_is_cyclonedx_and_a_pure_function_of_the_manifest(workspace):
    layer = Manifest.from_json(json.loads((workspace.root / "dist" / "layer-common-x86_64.manifest.json").read_text()))

    first, second = bundle_sbom(layer), bundle_sbom(layer)

    assert first == second
    doc = json.loads(first)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert "timestamp" not in doc["metadata"]
    assert [c["purl"] for c in doc["components"]] == ["pkg:pypi/pydantic@2.9.2", "pkg:pypi/typing-extensions@4.12.2"]
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": layer.sha256}]
    assert doc["serialNumber"].startswith("urn:uuid:")


def test_published_statements_are_in_toto_slsa_without_timestamps(workspace):
    workspace.publish("1.0.0")
    s3 = workspace.s3()
    envelopes = [k for k in workspace.stored_keys() if k.endswith(".dsse.json")]
    assert len(envelopes) == 5  # release + 2 functions + 2 layer bundles
    for key in envelopes:
        envelope = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert schemas.errors("statement", statement) == [], key
        assert "time" not in json.dumps(statement).lower().replace("runtime", "")
    orders = json.loads(base64.b64decode(json.loads(workspace.get(
        "relay/shop/functions/orders/1.0.0/manifest.dsse.json"))["payload"]))
    definition = orders["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"app": "shop", "kind": "function", "name": "orders", "version": "1.0.0"}
    assert definition["internalParameters"]["runtime"] == "python3.12"
    names = {d["name"] for d in definition["resolvedDependencies"]}
    assert {"git", "source", "layer:common"} <= names
    byproducts = {b["name"] for b in orders["predicate"]["runDetails"]["byproducts"]}
    assert byproducts == {"manifest.json", "sbom.cdx.json"}
