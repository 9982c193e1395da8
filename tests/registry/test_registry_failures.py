"""Killed publishes and concurrent publishers: never a visible half-version."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from registry_helpers import BUCKET, Crash, FailingStore, Workspace, make_dist

from builder.errors import NotFound, VersionConflict
from builder.registry.catalog import Catalog, list_versions
from builder.registry.factory import trusted_keys
from builder.registry.verify import verify_release


def _clear(workspace) -> None:
    keys = workspace.stored_keys("")
    if keys:
        workspace.s3().delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})


def _assert_invisible(store, trusted, version: str, previous: str | None) -> None:
    assert Catalog(store, "shop").latest() == previous
    assert [row.version for row in list_versions(store, "shop").rows] == ([previous] if previous else [])
    with pytest.raises(NotFound):
        verify_release(store, "shop", version, trusted)


@pytest.mark.parametrize("previous", [None, "0.9.0"], ids=["first-version", "over-an-existing-version"])
def test_a_publish_killed_after_each_write_leaves_no_half_version_and_a_rerun_completes_it(workspace, previous):
    store, trusted = workspace.store(), trusted_keys(workspace.project())

    def prepare() -> None:
        _clear(workspace)
        if previous:  # an earlier release whose layer bytes the new one shares
            make_dist(workspace.root, variant="old")
            workspace.publish(previous, store=store)
            make_dist(workspace.root)

    prepare()
    probe = FailingStore(store)
    workspace.publish("1.0.0", store=probe)
    writes = probe.written
    assert writes[-1] == "relay/shop/releases/1.0.0.json"  # the release document is the last write
    if previous is None:
        assert len(writes) == 1 + 1 + 4 + 4 * 3 + 1  # index, claim, blobs, (manifest, sbom, envelope) x4, release
    for fail_at in range(1, len(writes) + 1):
        prepare()
        dying = FailingStore(store, fail_at=fail_at)

        with pytest.raises(Crash):
            workspace.publish("1.0.0", store=dying)

        assert len(dying.written) == fail_at - 1
        _assert_invisible(store, trusted, "1.0.0", previous)
        result = workspace.publish("1.0.0", store=store)
        assert result.status == "published", f"killed at write {fail_at}"
        assert verify_release(store, "shop", "1.0.0", trusted).ok


def _second_workspace(workspace: Workspace, tmp_path, variant: str) -> Workspace:
    root = tmp_path / f"shop-{variant}"
    shutil.copytree(workspace.root, root)
    make_dist(root, variant=variant)
    return Workspace(root, workspace.key, workspace.aws)


def _race(workspaces: list[Workspace], version: str) -> list[object]:
    stores = [ws.store() for ws in workspaces]  # sessions opened before the start line
    start = threading.Barrier(len(workspaces))

    def one(index: int):
        start.wait()
        try:
            return workspaces[index].publish(version, store=stores[index])
        except VersionConflict as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(workspaces)) as pool:
        return list(pool.map(one, range(len(workspaces))))


def test_twenty_concurrent_publishers_of_the_same_bytes_one_wins_the_rest_are_noops(workspace):
    outcomes = _race([workspace] * 20, "2.0.0")

    statuses = sorted(getattr(o, "status", type(o).__name__) for o in outcomes)
    assert statuses == ["published"] + ["unchanged"] * 19
    assert verify_release(workspace.store(), "shop", "2.0.0", trusted_keys(workspace.project())).ok


def test_twenty_concurrent_publishers_of_different_bytes_one_wins_the_others_noop_or_conflict(workspace, tmp_path):
    other = _second_workspace(workspace, tmp_path, "b")
    contenders = [workspace, other] * 10

    outcomes = _race(contenders, "2.0.0")

    winners = [i for i, o in enumerate(outcomes) if getattr(o, "status", None) == "published"]
    assert len(winners) == 1
    winning_root = contenders[winners[0]].root
    for ws, outcome in zip(contenders, outcomes, strict=True):
        if ws.root == winning_root:
            assert getattr(outcome, "status", None) in ("published", "unchanged")
        else:
            assert isinstance(outcome, VersionConflict)
    report = verify_release(workspace.store(), "shop", "2.0.0", trusted_keys(workspace.project()))
    assert report.ok
    # The release holds the winner's bytes, all of them.
    release = Catalog(workspace.store(), "shop").read("2.0.0").release
    for fn in release.functions:
        built = json.loads((winning_root / "dist" / f"{fn.name}.manifest.json").read_text())
        assert built["sha256"] == fn.sha256
