"""`relay diff`: the pure differ, then two real releases published to the moto registry."""

from __future__ import annotations

import json

import pytest
from ledger_helpers import SHA, write_dist

from builder.commands.render.diff import diff_summary
from builder.errors import NotFound, VerificationFailed
from builder.registry.diff import BundleView, ReleaseContents, diff_packages, diff_releases, diff_versions
from builder.registry.factory import trusted_keys
from builder.registry.signing import TrustedKeys


def view(bundle: str, sha: str, packages=(), layers=(), kind=None) -> BundleView:
    kind = kind or ("layer" if bundle.startswith("layer-") else "function")
    name = bundle.split("-")[1] if kind == "layer" else bundle
    arch = bundle.rsplit("-", 1)[1] if kind == "layer" else "x86_64"
    return BundleView(kind, name, bundle, arch, sha, packages, layers)


def test_package_changes_by_canonical_name_and_version_order():
    old = ["pydantic==2.9.2", "Typing_Extensions==4.12.2", "urllib3==2.2.3", "six==1.16.0", "weird==abc"]
    new = ["pydantic==2.10.1", "typing-extensions==4.12.2", "urllib3==1.26.20", "idna==3.10", "weird==abd"]

    changes = {c.name: (c.change, c.from_version, c.to_version) for c in diff_packages(old, new)}

    assert changes == {
        "pydantic": ("upgraded", "2.9.2", "2.10.1"),  # 2.10 > 2.9: versions, not strings
        "urllib3": ("downgraded", "2.2.3", "1.26.20"),
        "six": ("removed", "1.16.0", None),
        "idna": ("added", None, "3.10"),
        "weird": ("changed", "abc", "abd"),
    }


def test_diff_of_two_fabricated_releases():
    old = ReleaseContents("shop", "1.0.0", [
        view("orders", SHA["a"], layers=["layer-common-x86_64@" + SHA["e"]]),
        view("billing", SHA["b"], packages=["stripe==10.0.0"]),
        view("legacy", SHA["c"]),
        view("layer-common-x86_64", SHA["e"], packages=["pydantic==2.9.2", "six==1.16.0"]),
    ])
    new = ReleaseContents("shop", "1.1.0", [
        view("orders", SHA["a"], layers=["layer-common-x86_64@" + SHA["f"]]),
        view("billing", SHA["1"], packages=["stripe==11.1.0"]),
        view("notify", SHA["2"]),
        view("layer-common-x86_64", SHA["f"], packages=["pydantic==2.10.1", "idna==3.10"]),
    ])

    result = diff_releases(old, new)

    rows = {b.bundle: (b.status, b.from_sha256, b.to_sha256, b.layers_changed) for b in result.bundles}
    assert rows == {
        "billing": ("changed", SHA["b"], SHA["1"], False),
        "legacy": ("removed", SHA["c"], None, False),
        "notify": ("added", None, SHA["2"], False),
        "orders": ("unchanged", SHA["a"], SHA["a"], True),
        "layer-common-x86_64": ("changed", SHA["e"], SHA["f"], False),
    }
    layer = next(b for b in result.bundles if b.kind == "layer")
    assert [(p.name, p.change) for p in layer.packages] == [("idna", "added"), ("pydantic", "upgraded"), ("six", "removed")]
    assert [b.bundle for b in result.bundles][-1] == "layer-common-x86_64"  # functions first
    text = diff_summary(result)
    assert "shop 1.0.0 -> 1.1.0" in text and "~ pydantic 2.9.2 -> 2.10.1 (upgraded)" in text
    assert "needs other layer bytes" in text
    assert json.loads(json.dumps(result.to_json()))["changed"] is True


def test_the_same_bytes_diff_to_nothing():
    same = [view("orders", SHA["a"]), view("layer-common-arm64", SHA["e"], packages=["six==1.16.0"])]
    result = diff_releases(ReleaseContents("shop", "1.0.0", same), ReleaseContents("shop", "1.0.1", same))

    assert result.differences == ()
    assert "the same bytes" in diff_summary(result)


# -- against the registry ----------------------------------------------------------------------------

PINS_100 = ("pydantic==2.9.2", "six==1.16.0", "typing-extensions==4.12.2")
PINS_110 = ("idna==3.10", "pydantic==2.10.1", "typing-extensions==4.12.2")


def publish_two(workspace):
    write_dist(workspace.root, packages=PINS_100)
    workspace.publish("1.0.0")
    write_dist(workspace.root, orders="b", packages=PINS_110, notify=True)
    workspace.publish("1.1.0")


def test_diff_reads_and_checks_two_published_releases(workspace):
    publish_two(workspace)
    project = workspace.project()

    result = diff_versions(workspace.store(), "shop", "1.0.0", "1.1.0", trusted_keys(project))

    status = {b.bundle: b.status for b in result.bundles}
    assert status == {"orders": "changed", "billing": "unchanged", "notify": "added",
                      "layer-common-x86_64": "changed", "layer-common-arm64": "changed"}
    billing = next(b for b in result.bundles if b.bundle == "billing")
    assert billing.layers_changed  # same code, but it needs the new layer
    layer = next(b for b in result.bundles if b.bundle == "layer-common-arm64")
    assert {(p.name, p.change) for p in layer.packages} == {("idna", "added"), ("pydantic", "upgraded"), ("six", "removed")}
    assert "signatures by trusted keys" in result.checked


def test_diff_refuses_a_manifest_changed_after_signing(workspace):
    publish_two(workspace)
    key = "relay/shop/functions/orders/1.1.0/manifest.json"
    doc = json.loads(workspace.get(key))
    doc["lock"] = {"path": "x.txt", "sha256": SHA["a"], "packages": ["evil==6.6.6"]}
    workspace.put(key, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())

    with pytest.raises(VerificationFailed, match="orders/1.1.0/manifest.json: the manifest is not the one signed"):
        diff_versions(workspace.store(), "shop", "1.0.0", "1.1.0", trusted_keys(workspace.project()))
    # Without trusted keys the signature cannot be checked, but the manifest still must match the release.
    result = diff_versions(workspace.store(), "shop", "1.0.0", "1.1.0", TrustedKeys({}))
    assert "signatures NOT checked" in result.checked


def test_diff_refuses_a_manifest_that_disagrees_with_its_release(workspace):
    publish_two(workspace)
    key = "relay/shop/functions/billing/1.1.0/manifest.json"
    doc = json.loads(workspace.get(key))
    doc["sha256"] = SHA["9"]
    workspace.put(key, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())

    with pytest.raises(VerificationFailed, match="sha256 is '9999"):
        diff_versions(workspace.store(), "shop", "1.0.0", "1.1.0", TrustedKeys({}))


def test_diff_of_an_unpublished_version_is_not_found(workspace):
    publish_two(workspace)
    with pytest.raises(NotFound, match="shop@9.9.9 is not published"):
        diff_versions(workspace.store(), "shop", "1.0.0", "9.9.9", trusted_keys(workspace.project()))


def test_relay_diff_command(workspace):
    publish_two(workspace)

    shown = workspace.relay("diff", "1.0.0", "1.1.0")
    as_json = workspace.relay("diff", "1.0.0", "1.1.0", "--json")
    missing = workspace.relay("diff", "1.0.0", "2.0.0")

    assert shown.returncode == 0, shown.stderr
    assert "+ idna 3.10" in shown.stdout and "- six 1.16.0" in shown.stdout
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert (doc["from"], doc["to"], doc["changed"]) == ("1.0.0", "1.1.0", True)
    assert missing.returncode == 12 and "shop@2.0.0 is not published" in missing.stderr
