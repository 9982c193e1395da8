"""Semver parsing, bumping, and the index order (pure), then --bump against the registry."""

from __future__ import annotations

import random

import pytest
import semver
from registry_helpers import make_dist

from builder.errors import UsageError
from builder.registry.catalog import Catalog, list_versions
from builder.registry.versions import bump, order_key, parse_version

# semver.org's own precedence example, plus numbers of different lengths.
ORDERED = [
    "0.0.1", "0.9.0", "1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "2.4.0-rc.1",
    "2.4.0-rc.2", "2.4.0-rc.10", "2.4.0", "10.0.0", "123456789.0.0",
]


def test_order_key_sorts_newest_first_exactly_like_semver_precedence():
    shuffled = ORDERED[:]
    random.Random(7).shuffle(shuffled)
    by_key = sorted(shuffled, key=lambda v: order_key(semver.Version.parse(v)))
    assert by_key == list(reversed(ORDERED))


def test_order_key_agrees_with_semver_on_random_versions():
    rng = random.Random(11)
    idents = ["alpha", "beta", "rc", "0", "1", "2", "10", "a-b", "x1"]
    versions = set()
    while len(versions) < 400:
        pre = ".".join(rng.choice(idents) for _ in range(rng.randint(0, 3)))
        text = f"{rng.randint(0, 12)}.{rng.randint(0, 12)}.{rng.randint(0, 12)}" + (f"-{pre}" if pre else "")
        versions.add(semver.Version.parse(text))
    expected = sorted(versions, reverse=True)
    assert sorted(versions, key=order_key) == expected


def test_build_metadata_does_not_change_the_order_key():
    assert order_key(parse_version("1.2.3+build.7")) == order_key(parse_version("1.2.3"))


@pytest.mark.parametrize("latest, part, expected", [
    (None, "patch", "0.0.1"), (None, "minor", "0.1.0"), (None, "major", "1.0.0"),
    ("2.3.4", "patch", "2.3.5"), ("2.3.4", "minor", "2.4.0"), ("2.3.4", "major", "3.0.0"),
    # a prerelease is released by the bump it leads to (npm, semver.next_version)
    ("2.4.0-rc.1", "patch", "2.4.0"), ("2.4.0-rc.1", "minor", "2.4.0"), ("2.4.0-rc.1", "major", "3.0.0"),
    ("2.4.1-rc.1", "patch", "2.4.1"), ("2.4.1-rc.1", "minor", "2.5.0"), ("3.0.0-rc.1", "major", "3.0.0"),
    ("2.3.4+build.9", "patch", "2.3.5"),
])
def test_bump(latest, part, expected):
    assert str(bump(parse_version(latest) if latest else None, part)) == expected


def test_bad_versions_are_usage_errors_with_a_hint():
    with pytest.raises(UsageError) as caught:
        parse_version("v2.3.0")
    assert "Drop the leading 'v'" in caught.value.hint
    with pytest.raises(UsageError):
        bump(None, "prerelease")


def test_bump_publishes_the_next_version_across_prereleases(workspace):
    result = workspace.publish(bump="minor")
    assert result.version == "0.1.0"
    make_dist(workspace.root, variant="b")
    workspace.publish("0.2.0-rc.1")
    make_dist(workspace.root, variant="c")

    result = workspace.publish(bump="patch")

    assert result.version == "0.2.0"  # the release of the latest prerelease
    assert Catalog(workspace.store(), "shop").latest() == "0.2.0"


def test_bump_with_bytes_the_latest_release_already_holds_does_nothing(workspace):
    workspace.publish("1.4.2")

    result = workspace.publish(bump="patch")

    assert (result.status, result.version) == ("unchanged", "1.4.2")


def test_bump_skips_a_version_left_unfinished_by_other_bytes(workspace):
    from registry_helpers import Crash, FailingStore

    workspace.publish("1.0.0")
    make_dist(workspace.root, variant="b")
    with pytest.raises(Crash):  # 1.1.0 claimed by build b, then the run died
        workspace.publish("1.1.0", store=FailingStore(workspace.store(), fail_at=5))
    make_dist(workspace.root, variant="c")

    result = workspace.publish(bump="minor")

    assert result.version == "1.2.0"
    assert [r.version for r in list_versions(workspace.store(), "shop").rows] == ["1.2.0", "1.0.0"]


def test_versions_are_listed_newest_first_with_digests_and_dates(workspace):
    for index, version in enumerate(["1.9.0", "1.10.0", "1.10.1-rc.1", "1.2.0"]):
        make_dist(workspace.root, variant=str(index))
        workspace.publish(version)

    listing = list_versions(workspace.store(), "shop")

    assert [r.version for r in listing.rows] == ["1.10.1-rc.1", "1.10.0", "1.9.0", "1.2.0"]
    assert set(listing.rows[0].digests) == {"orders", "billing", "layer-common-x86_64", "layer-common-arm64"}
    assert all(r.published.tzinfo is not None for r in listing.rows)
    one = list_versions(workspace.store(), "shop", name="orders", limit=2)
    assert [r.version for r in one.rows] == ["1.10.1-rc.1", "1.10.0"] and one.truncated
    assert list(one.rows[0].digests) == ["orders"] and one.rows[0].changed is True
    layer = list_versions(workspace.store(), "shop", name="common")
    assert [r.changed for r in layer.rows] == [False, False, False, None]
