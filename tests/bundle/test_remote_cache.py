"""`relay build --remote-cache`: a fleet of runners builds each unique input once (moto S3)."""

from __future__ import annotations

import boto3
from bundle_helpers import sha256_of


def with_registry(root, bucket="tiny-artifacts"):
    toml = root / "relay.toml"
    toml.write_text(toml.read_text() + f'\n[registry]\nbucket = "{bucket}"\nregion = "us-east-1"\n')
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)


def test_second_runner_takes_every_bundle_from_the_registry(aws, tiny_project, relay, tmp_path, monkeypatch):
    with_registry(tiny_project)
    first = relay("build", "--remote-cache", "--json", cwd=tiny_project)
    assert first.code == 0, first.stderr
    assert {b["status"] for b in first.json()["bundles"]} == {"built"}
    built = {b["name"] + b["architecture"]: b["sha256"] for b in first.json()["bundles"]}

    # Another runner: empty local caches and no package index at all.
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "runner-2"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    (tiny_project / "dist").rename(tmp_path / "dist-of-runner-1")
    second = relay("build", "--remote-cache", "--json", cwd=tiny_project)
    assert second.code == 0, second.stderr
    assert {b["status"] for b in second.json()["bundles"]} == {"remote"}
    assert {b["name"] + b["architecture"]: b["sha256"] for b in second.json()["bundles"]} == built
    for zip_path in (tiny_project / "dist").glob("*.zip"):
        assert sha256_of(zip_path) == sha256_of(tmp_path / "dist-of-runner-1" / zip_path.name)


def test_without_the_flag_the_registry_is_not_asked(aws, tiny_project, relay, tmp_path):
    with_registry(tiny_project)
    assert relay("build", cwd=tiny_project).code == 0
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.list_objects_v2(Bucket="tiny-artifacts").get("KeyCount", 0) == 0
