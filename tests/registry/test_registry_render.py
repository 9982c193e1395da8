"""What people read from publish, versions, verify and verify --rebuild (the command layer's renderings)."""

from __future__ import annotations

import datetime as dt

from builder.commands.render.registry import publish_summary, rebuild_summary, verify_summary, versions_table
from builder.registry.catalog import VersionRow, VersionsListing
from builder.registry.publish import BundleOutcome, PublishResult
from builder.registry.rebuild import RebuildReport, RebuiltBundle
from builder.registry.verify import Check, VerifyReport

A, B = "a" * 64, "b" * 64
WHEN = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)


def _outcome(kind: str, name: str, blob: str, size: int) -> BundleOutcome:
    return BundleOutcome(kind, name, "x86_64", A, size, f"relay/shop/{name}/manifest.json", blob, "written")


def test_publish_says_what_went_up_and_what_was_there():
    result = PublishResult("shop", "1.2.0", "published", "relay/shop/releases/1.2.0.json",
                           [_outcome("function", "orders", "uploaded", 2048), _outcome("function", "billing", "present", 10),
                            _outcome("layer", "common-x86_64", "uploaded", 1024)])
    assert publish_summary(result) == ("Published shop@1.2.0: 2 function(s), 1 layer bundle(s); 2 blob(s) uploaded "
                                       "(3.0 KiB), 1 already in the registry.")
    unchanged = PublishResult("shop", "1.2.0", "unchanged", "k", note="the latest release 1.2.0 holds exactly these bundles")
    assert publish_summary(unchanged) == "shop@1.2.0: the latest release 1.2.0 holds exactly these bundles; nothing to do."


def test_versions_of_one_function_say_whether_it_changed():
    rows = [VersionRow("1.1.0", WHEN, {"orders": B}, changed=True), VersionRow("1.0.0", WHEN, {"orders": A})]
    text = versions_table(VersionsListing("shop", "orders", rows, truncated=True))
    lines = text.splitlines()
    assert lines[0].split() == ["version", "published", "(UTC)", "bundle", "sha256", "changed"]
    assert "1.1.0" in lines[2] and "2026-03-01 12:30:00" in lines[2] and B[:16] in lines[2] and lines[2].rstrip().endswith("yes")
    assert lines[3].rstrip().endswith("-")  # the oldest shown has nothing to compare with
    assert lines[-1] == "(more versions exist: --all lists every one)"
    assert versions_table(VersionsListing("shop", "orders", [])) == "No published versions of shop (orders)."


def test_verify_lists_every_check_with_the_key_that_vouched_and_a_verdict():
    checks = [Check("release shop@1.0.0", "signature", True, "signed by trusted key 0123456789abcdef, names shop@1.0.0"),
              Check("function orders", "blob", False, "relay/blobs/sha256/aa is missing")]
    text = verify_summary(VerifyReport("shop", "1.0.0", checks))
    assert "signed by trusted key 0123456789abcdef" in text
    assert any(line.startswith("FAIL") and "function orders" in line for line in text.splitlines())
    assert text.endswith("shop@1.0.0: 1 of 2 checks FAILED")
    assert verify_summary(VerifyReport("shop", "1.0.0", checks[:1])).endswith("shop@1.0.0: verified (1 checks passed)")


def test_rebuild_names_the_commit_and_each_bundle():
    report = RebuildReport("shop", "1.0.0", "c" * 40, [RebuiltBundle("orders", A, A)], note="built from a dirty tree")
    text = rebuild_summary(report)
    assert f"shop@1.0.0 rebuilt from {'c' * 12}: every bundle is byte-for-byte identical\nbuilt from a dirty tree" in text
    differs = rebuild_summary(RebuildReport("shop", "1.0.0", "c" * 40, [RebuiltBundle("orders", A, None)]))
    assert "not built" in differs and differs.endswith("bundles DIFFER")
