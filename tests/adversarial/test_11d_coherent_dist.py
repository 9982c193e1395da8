"""Issue 11, items 7 and 10: publish only a dist/ that one successful `relay build` wrote whole.

After a build fails on one function the others' new bundles sit next to the
failed one's old bundle: publishing that would sign new code for some
functions and stale code for the failed one under one commit. The build
stamps dist/index.json (its id, each bundle's build and manifest digest) and
marks it failed when it fails; publish refuses, exit 4, naming what is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote"))

from promote_helpers import BUCKET, Shop, new_shop, write_tree

from builder.bundle.pipeline import build_project
from builder.errors import BuildFailed, RelayError
from builder.registry.factory import open_signer
from builder.registry.publish import VersionRequest, publish


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def publish_dist(shop: Shop, version: str):
    project = shop.project()
    store = shop.store()
    return publish(project, store, open_signer(project, store), VersionRequest(version=version))


def registry_keys(shop: Shop) -> list[str]:
    listed = shop.client("registry", "s3").list_objects_v2(Bucket=BUCKET, Prefix="relay/").get("Contents", ())
    return sorted(o["Key"] for o in listed)


def break_billing(shop: Shop) -> None:
    write_tree(shop.root, {"functions/billing/billing/handler.py": "import not_a_module_anywhere\n\n"
                                                                    "def handle(event, context):\n    return 1\n"})


def test_after_a_failed_build_publish_refuses_naming_the_function_and_after_a_fixed_build_it_publishes(shop):
    shop.build()
    shop.set_code("orders", "b")
    break_billing(shop)
    with pytest.raises(RelayError):
        build_project(shop.project())
    before = registry_keys(shop)

    with pytest.raises(BuildFailed) as refused:
        publish_dist(shop, "1.0.0")

    assert refused.value.exit_code == 4
    assert "function billing" in refused.value.message and "failed" in refused.value.message
    assert registry_keys(shop) == before == [], "nothing written before the refusal"

    shop.set_code("billing", "b")
    shop.build()
    assert publish_dist(shop, "1.0.0").status == "published"


def test_a_bundle_left_by_an_earlier_build_is_named_stale(shop):
    shop.build()
    shop.set_code("billing", "b")
    build_project(shop.project(), ("orders",))  # billing (and the arm64 layer) keep the earlier build's bundles

    with pytest.raises(BuildFailed) as refused:
        publish_dist(shop, "1.0.0")

    assert "function billing (built by an earlier relay build)" in refused.value.message
    assert "function orders" not in refused.value.message


def test_a_manifest_edited_after_the_build_is_named_stale(shop):
    shop.build()
    manifest = shop.root / "dist" / "notify.manifest.json"
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    doc["handler"] = "notify.other.handle"
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    with pytest.raises(BuildFailed, match="function notify .its manifest changed after the build"):
        publish_dist(shop, "1.0.0")


def test_an_index_edited_to_say_complete_after_a_failed_build_is_still_refused(shop):
    shop.build()
    shop.set_code("orders", "b")
    break_billing(shop)
    with pytest.raises(RelayError):
        build_project(shop.project())
    index = shop.root / "dist" / "index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    doc["build"] = {"id": "0" * 64, "state": "complete"}  # a hand 'repair' of the failed marker
    index.write_text(json.dumps(doc), encoding="utf-8")

    with pytest.raises(BuildFailed, match="function orders .built by an earlier relay build"):
        publish_dist(shop, "1.0.0")
