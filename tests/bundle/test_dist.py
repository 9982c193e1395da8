"""builder/dist.py, the build output contract, against what a real `relay build` wrote."""

from __future__ import annotations

import json

import pytest
from bundle_helpers import sha256_of

from builder import dist
from builder.config import load_project
from builder.errors import NotFound, UsageError, VerificationFailed


def test_readers_find_what_the_build_wrote(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    project = load_project(tiny_project / "relay.toml")
    folder = tiny_project / "dist"

    pay = dist.function_bundle(project, project.function("pay"))
    assert pay.zip_path == folder / "pay.zip"
    assert pay.layer_zips == (folder / "layer-base-arm64.zip",)
    assert pay.manifest.sha256 == sha256_of(folder / "pay.zip")

    built = dist.load_dist(project)
    assert sorted(b.zip_name for b in built.bundles) == sorted(p.name for p in folder.glob("*.zip"))
    assert [b.manifest.kind for b in built.bundles] == ["layer", "layer", "function", "function"]

    listed = {p.name for p in dist.output_files(folder)}
    built_files = [*folder.glob("*.zip"), *folder.glob("*.manifest.json")]
    assert listed == {"index.json", *(p.name for p in built_files)}  # not the no-op's own stamp


def test_function_bundle_refuses_a_missing_layer_and_changed_bytes(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    project = load_project(tiny_project / "relay.toml")
    folder = tiny_project / "dist"

    (folder / "layer-base-x86_64.zip").rename(folder / "aside.zip")
    with pytest.raises(NotFound, match="layer base"):
        dist.function_bundle(project, project.function("hello"))
    (folder / "aside.zip").rename(folder / "layer-base-x86_64.zip")

    (folder / "hello.zip").write_bytes(b"not the built zip")
    with pytest.raises(VerificationFailed, match="hello.zip"):
        dist.function_bundle(project, project.function("hello"))
    with pytest.raises(UsageError, match="does not match its manifest"):
        dist.load_dist(project)


def test_the_no_op_watches_every_listed_bundle_and_nothing_else(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    folder = tiny_project / "dist"

    # a file that is not build output does not cost the fast path (which reports 0 s)
    (folder / "notes.txt").write_text("mine\n")
    fast = relay("build", "--json", cwd=tiny_project).json()
    assert fast["nothing_changed"] is True and fast["seconds"] == 0.0

    # a layer zip gone from dist/ is noticed and put back
    (folder / "layer-base-arm64.zip").unlink()
    again = relay("build", "--json", cwd=tiny_project).json()
    statuses = {(b["name"], b["architecture"]): b["status"] for b in again["bundles"]}
    assert statuses[("base", "arm64")] == "cached"
    index = json.loads((folder / "index.json").read_text())
    assert "layer-base-arm64.zip" in [entry["zip"] for entry in index["bundles"]]
    assert (folder / "layer-base-arm64.zip").is_file()
