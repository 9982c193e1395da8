"""Finding the latest version among 10,000 costs the same few requests as among one.

All 10,000 versions get their index entry; to keep the suite quick only the
newest 50 and one in fifty of the rest get a release document (the lookups
never read the others; the full measurement in the registry issue's note
seeded every one).
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from registry_helpers import BUCKET

from builder.aws.session import RequestCounter
from builder.registry.catalog import Catalog, list_versions
from builder.registry.release import Release, ReleaseFunction
from builder.registry.versions import parse_version

pytestmark = pytest.mark.slow
SHA = "ab" * 32


def seed_versions(workspace, versions: list[str], with_release: set[str]) -> None:
    """Index entries for `versions` and release documents for `with_release`, straight to S3 (no signing)."""
    from botocore.config import Config

    layout = workspace.store().layout
    s3 = workspace.aws.session("registry").client("s3", config=Config(max_pool_connections=32))

    def one(version: str) -> None:
        s3.put_object(Bucket=BUCKET, Key=layout.index_entry("shop", parse_version(version)), Body=b"")
        if version not in with_release:
            return
        release = Release(app="shop", version=version, runtime="python3.12", functions=[ReleaseFunction(
            name="orders", manifest=f"shop/functions/orders/{version}/manifest.json", sha256=SHA,
            code_sha256="q" * 43 + "=", content_digest=SHA, architecture="x86_64", handler="orders.handler.handle")],
            layers=[])
        s3.put_object(Bucket=BUCKET, Key=layout.release("shop", version), Body=release.to_bytes())

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, versions))


def ten_thousand_versions() -> list[str]:
    found = [f"{major}.{minor}.{patch}" for major in range(10) for minor in range(10) for patch in range(100)]
    found[-5:] = ["9.9.95-rc.1", "9.9.95-rc.2", "9.9.95-rc.10", "9.10.0-rc.1", "10.0.0-alpha"]
    random.Random(3).shuffle(found)
    return found


def test_latest_of_10000_versions_costs_two_requests(workspace):
    versions = ten_thousand_versions()
    newest = sorted(versions, key=parse_version, reverse=True)
    seed_versions(workspace, versions, set(newest[:50]) | set(newest[::50]))
    counter = RequestCounter()
    catalog = Catalog(workspace.store(counter), "shop")
    counter.reset()

    latest = catalog.latest()

    assert latest == "10.0.0-alpha"
    assert counter.by_operation() == {"s3.ListObjectsV2": 1, "s3.HeadObject": 1}

    counter.reset()
    listing = list_versions(catalog.store, "shop", limit=20)
    assert [r.version for r in listing.rows] == newest[:20]
    assert newest[:6] == ["10.0.0-alpha", "9.10.0-rc.1", "9.9.95-rc.10", "9.9.95-rc.2", "9.9.95-rc.1", "9.9.94"]
    assert counter.by_operation() == {"s3.ListObjectsV2": 1, "s3.GetObject": 21}
