"""A cold build keeps what it just installed as the import check's tree: no zip is unpacked again.

Issue 13 (cold build near the decompress + deflate floor): the layer's files are on disk once. As
soon as they are final they are moved into relay's cache as the tree the import check mounts
(`Trees.keep`, named by their content digest) and zipped from there, so functions are checked while
the zip is written, instead of the check unpacking the zip it was just made from. The tree must
still be exactly the zip: the same members, bytes and (read-only) modes.
"""

from __future__ import annotations

import shutil
import stat
import threading
import zipfile
from pathlib import Path

import attrs
import pytest
from bundle_helpers import make_wheel, write_lock

from builder.bundle import pipeline
from builder.bundle.pipeline import BuildOptions, build_project
from builder.config import load_project
from builder.errors import BuildFailed
from builder.runtime import mount


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every zip the import check's trees unpack, in order."""
    seen: list[Path] = []
    original = mount._unpack

    def counting(archive: Path, dest: Path) -> None:
        seen.append(archive)
        original(archive, dest)

    monkeypatch.setattr(mount, "_unpack", counting)
    return seen


def assert_tree_is_the_zip(tree: Path, zip_path: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        files = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
        assert files == set(members)
        for name, info in members.items():
            assert (tree / name).read_bytes() == archive.read(info), name
            zip_mode = (info.external_attr >> 16) & 0o777
            assert stat.S_IMODE((tree / name).stat().st_mode) == zip_mode & ~0o222, name
    assert [p for p in tree.rglob("*") if p.is_dir() and not any(p.iterdir())] == []  # the zip has no empty folder


def test_a_cold_build_unpacks_no_zip_for_the_import_check(tiny_project: Path, cache_dir: Path,
                                                          unpacked: list[Path]) -> None:
    result = build_project(load_project(tiny_project / "relay.toml"))

    assert unpacked == []
    checked = [b for b in result.bundles if b.manifest.kind == "function"]
    assert checked and all(b.import_check is not None and b.import_check.status != "skipped" for b in checked)
    for bundle in result.bundles:
        assert_tree_is_the_zip(cache_dir / "trees" / bundle.manifest.content_digest, bundle.zip_path)
    # Nothing is left in the scratch folder the files were installed into.
    assert list((cache_dir / "tmp").iterdir()) == []


def test_a_build_that_lost_its_trees_unpacks_them_again(tiny_project: Path, cache_dir: Path,
                                                        unpacked: list[Path]) -> None:
    project = load_project(tiny_project / "relay.toml")
    first = build_project(project)
    shutil.rmtree(cache_dir / "trees")
    shutil.rmtree(cache_dir / "verdicts")
    (tiny_project / "dist/.relay-build.json").unlink(missing_ok=True)

    second = build_project(project)

    assert {b.manifest.sha256 for b in second.bundles} == {b.manifest.sha256 for b in first.bundles}
    assert unpacked  # taken from the build cache: nothing installed to keep, so the check unpacks the zips
    for bundle in second.bundles:
        assert_tree_is_the_zip(cache_dir / "trees" / bundle.manifest.content_digest, bundle.zip_path)


def test_without_the_import_check_nothing_is_kept(tiny_project: Path, cache_dir: Path) -> None:
    build_project(load_project(tiny_project / "relay.toml"), options=BuildOptions(import_check=False))

    assert not (cache_dir / "trees").exists()


def test_a_folder_left_empty_by_the_strip_is_not_in_the_tree(tiny_project: Path, cache_dir: Path,
                                                             wheelhouse: dict[str, Path]) -> None:
    """`ghost/` holds only bytecode, which the zip leaves out: in the tree it would import as a namespace package."""
    ghost = make_wheel(wheelhouse["money"].parent, "ghost", "1.0", {"ghost/mod.pyc": "bytecode of the host"})
    (tiny_project / "layers/base/requirements.in").write_text("money\nghost\n", encoding="utf-8")
    write_lock(tiny_project / "layers/base/requirements.in",
               [("money", "2.1", wheelhouse["money"]), ("ghost", "1.0", ghost)])

    result = build_project(load_project(tiny_project / "relay.toml"))

    layer = next(b for b in result.bundles if b.manifest.kind == "layer")
    tree = cache_dir / "trees" / layer.manifest.content_digest
    assert_tree_is_the_zip(tree, layer.zip_path)
    assert (tree / "python/money").is_dir()
    assert not (tree / "python/ghost").exists()


def test_a_function_is_checked_while_its_layer_is_still_being_zipped(tiny_project: Path, cache_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer's files are kept (named by their content digest) before its zip is written, so the check need not wait."""
    checking = threading.Event()
    seen_while_zipping: list[bool] = []
    write_zip, check_handler = pipeline.write_zip, pipeline.check_handler

    def zip_layer_after_a_check(entries, dest, *, epoch):
        entries = list(entries)
        if entries and entries[0].path.startswith("python/"):  # the layer's zip: wait (bounded) for a check
            seen_while_zipping.append(checking.wait(timeout=30))
        return write_zip(entries, dest, epoch=epoch)

    def noting_check(**kwargs):
        checking.set()
        return check_handler(**kwargs)

    monkeypatch.setattr(pipeline, "write_zip", zip_layer_after_a_check)
    monkeypatch.setattr(pipeline, "check_handler", noting_check)

    result = build_project(load_project(tiny_project / "relay.toml"), options=BuildOptions(jobs=2))

    assert seen_while_zipping == [True, True]  # each layer zip (x86_64, arm64) waited for a function's check, and it came
    layer = next(b for b in result.bundles if b.manifest.kind == "layer")
    assert_tree_is_the_zip(cache_dir / "trees" / layer.manifest.content_digest, layer.zip_path)


def test_a_layer_that_fails_before_its_files_are_kept_fails_its_functions_without_waiting(
        tiny_project: Path, cache_dir: Path, wheelhouse: dict[str, Path]) -> None:
    """A corrupt cached wheel fails the layer's install: the functions waiting for its files fail with it, at once."""
    build_project(load_project(tiny_project / "relay.toml"))
    shutil.rmtree(cache_dir / "builds")
    wheel = next((cache_dir / "wheels").glob("*/money-2.1-*.whl"))
    wheel.chmod(0o644)
    wheel.write_bytes(b"not the wheel the lock pins")

    with pytest.raises(BuildFailed, match="hash mismatch for money==2.1"):
        build_project(load_project(tiny_project / "relay.toml"), options=BuildOptions(jobs=2))


def test_the_build_result_says_which_wheels_it_downloaded_and_how(tiny_project: Path, cache_dir: Path) -> None:
    """`relay build --json` "downloads": per platform, how many wheels, and from where."""
    cold = build_project(load_project(tiny_project / "relay.toml")).to_json()
    by_platform = {(d["runtime"], d["architecture"]): d for d in cold["downloads"]}

    assert set(by_platform) == {("python3.12", "x86_64"), ("python3.12", "arm64")}
    x86 = by_platform[("python3.12", "x86_64")]
    assert x86["wheels"] == 2 and x86["pip"] + x86["direct"] == 2  # greeting and money
    assert x86["source"] and bool(x86["pip_reason"]) == bool(x86["pip"])  # pip only with a reason
    (tiny_project / "dist/.relay-build.json").unlink(missing_ok=True)
    warm = build_project(load_project(tiny_project / "relay.toml"), options=BuildOptions(use_cache=False)).to_json()
    assert warm["downloads"] == []  # the wheel cache had them all


def test_a_tree_whose_files_are_not_what_its_digest_says_fails_the_build(tiny_project: Path, cache_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree is named from the installer's digests before zipping; the zip's own digest must agree."""
    from builder.bundle import install

    original = install.install

    def misreporting(wheels, target, *more):
        written = original(wheels, target, *more)
        # As if a file changed after it was hashed: the zip hashes what it copies, and must disagree.
        return {path: attrs.evolve(what, sha256="0" * 64) for path, what in written.items()}

    monkeypatch.setattr(install, "install", misreporting)

    with pytest.raises(BuildFailed, match="its files changed while they were being zipped"):
        build_project(load_project(tiny_project / "relay.toml"))
    assert not (tiny_project / "dist/hello.zip").exists()


@pytest.mark.parametrize("attempt", range(5))
def test_two_builds_racing_on_one_cold_cache_both_finish_with_the_same_bytes(tiny_project: Path, cache_dir: Path,
                                                                               tmp_path: Path, attempt: int) -> None:
    """Two CI jobs on one shared RELAY_CACHE_DIR: wheels, builds, kept trees, verdicts and bytecode are raced for."""
    import os
    import subprocess
    import sys

    other = tmp_path / "other"
    shutil.copytree(tiny_project, other, symlinks=True)
    relay = Path(sys.executable).with_name("relay")
    runs = [subprocess.Popen([str(relay), "build", "--json"], cwd=root, env=os.environ.copy(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for root in (tiny_project, other)]
    outputs = [run.communicate(timeout=300) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], [err.decode()[-600:] for _, err in outputs]
    zips = [{p.name: p.read_bytes() for p in (root / "dist").glob("*.zip")} for root in (tiny_project, other)]
    assert zips[0] == zips[1] and len(zips[0]) == 4
    for kept in (cache_dir / "trees").iterdir():  # every tree complete: no staging folder left behind
        assert not kept.name.startswith("."), kept
