"""`relay build` end to end on a small real project, offline (wheels made by the tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

import pytest
from bundle_helpers import make_wheel, sha256_of

from builder import schemas

BUNDLES = {"hello", "pay", "layer-base-x86_64", "layer-base-arm64"}


def dist_files(root: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted((root / "dist").glob("*.zip"))}


def test_build_writes_one_zip_and_manifest_per_function_and_layer(tiny_project, relay):
    run = relay("build", "--json", cwd=tiny_project)
    assert run.code == 0, run.stderr
    dist = tiny_project / "dist"
    assert {p.name.removesuffix(".zip") for p in dist.glob("*.zip")} == BUNDLES
    for bundle in BUNDLES:
        manifest = json.loads((dist / f"{bundle}.manifest.json").read_text())
        assert schemas.errors("manifest", manifest) == []
        data = (dist / f"{bundle}.zip").read_bytes()
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert manifest["size"]["zipped"] == len(data)
    hello = json.loads((dist / "hello.manifest.json").read_text())
    layer = json.loads((dist / "layer-base-x86_64.manifest.json").read_text())
    assert hello["layers"] == [{"name": "base", "sha256": layer["sha256"]}]
    assert hello["lock"]["packages"] == ["greeting==1.0"]
    assert hello["handler"] == "hello.app.handle"
    pay = json.loads((dist / "pay.manifest.json").read_text())
    assert pay["architecture"] == "arm64"
    assert pay["layers"][0]["sha256"] == json.loads((dist / "layer-base-arm64.manifest.json").read_text())["sha256"]
    index = json.loads((dist / "index.json").read_text())
    assert [b["kind"] for b in index["bundles"]] == ["layer", "layer", "function", "function"]
    # no host paths or build times in a manifest
    text = (dist / "hello.manifest.json").read_text()
    assert str(tiny_project) not in text and time.strftime("%Y-%m-%d") not in text


def test_bundle_holds_only_expected_files_with_normalised_modes_and_one_timestamp(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    with zipfile.ZipFile(tiny_project / "dist/hello.zip") as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names, key=lambda n: n.encode())
    assert "hello/app.py" in names and "greeting/__init__.py" in names and "run.sh" in names
    assert not any(n.endswith("/") for n in names), "no directory entries"
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.split("/")[-1] in {"INSTALLER", "REQUESTED", "direct_url.json"} for n in names)
    assert "requirements.in" not in names and "requirements.txt" not in names
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert set(modes.values()) <= {0o644, 0o755}
    assert modes["run.sh"] == 0o755 and modes["hello/app.py"] == 0o644
    with zipfile.ZipFile(tiny_project / "dist/layer-base-x86_64.zip") as archive:
        layer_names = archive.namelist()
    assert all(n.startswith("python/") for n in layer_names)
    assert "python/common/util.py" in layer_names and "python/money/__init__.py" in layer_names
    assert "python/pyproject.toml" not in layer_names


def test_same_bytes_from_another_folder_umask_mtimes_and_timezone(tiny_project, relay, tmp_path, monkeypatch):
    assert relay("build", cwd=tiny_project).code == 0
    first = dist_files(tiny_project)

    copy = tmp_path / "elsewhere" / "deeper" / "tiny"
    shutil.copytree(tiny_project, copy, ignore=shutil.ignore_patterns("dist"))
    for path in copy.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (copy / "functions/hello/hello/app.py").chmod(0o600)  # group/other bits must not matter
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    old = os.umask(0o077)
    try:
        run = relay("build", "--no-cache", cwd=copy)
    finally:
        os.umask(old)
        monkeypatch.delenv("TZ")
        time.tzset()
    assert run.code == 0, run.stderr
    assert dist_files(copy) == first


def test_nothing_changed_rebuilds_nothing_and_one_change_rebuilds_one(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    again = relay("build", "--json", cwd=tiny_project)
    assert again.code == 0
    doc = again.json()
    assert doc["nothing_changed"] is True
    assert {b["status"] for b in doc["bundles"]} == {"unchanged"}
    human = relay("build", cwd=tiny_project)
    assert "Nothing changed" in human.stdout

    app = tiny_project / "functions/pay/pay/app.py"
    app.write_text(app.read_text() + "\nVERSION = 2\n")
    changed = relay("build", "--json", cwd=tiny_project).json()
    statuses = {b["name"] if b["kind"] == "function" else f"layer-{b['name']}-{b['architecture']}": b["status"]
                for b in changed["bundles"]}
    assert statuses == {"pay": "built", "hello": "unchanged", "layer-base-x86_64": "unchanged",
                        "layer-base-arm64": "unchanged"}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_wrong_hash_in_lock_fails_the_build(tiny_project, wheelhouse, relay, monkeypatch, arch, tmp_path):
    # The lock names a wheel whose bytes are not the ones pinned: pip must refuse it.
    other = make_wheel(tmp_path / "tampered", "greeting", "1.0", {"greeting/__init__.py": "EVIL = True\n"})
    lock = tiny_project / "functions/hello/requirements.txt"
    lock.write_text(lock.read_text().replace(sha256_of(wheelhouse["greeting"]), sha256_of(other)))
    # the index serves the genuine wheel: pip must refuse it against the edited lock
    toml = tiny_project / "relay.toml"
    handler = 'handler = "hello.app.handle"'
    toml.write_text(toml.read_text().replace(handler, f'{handler}\narchitecture = "{arch}"'))
    run = relay("build", "hello", cwd=tiny_project)
    assert run.code == 4, run.stderr
    assert "hash mismatch for greeting==1.0" in run.stderr, run.stderr
    assert not (tiny_project / "dist/hello.zip").exists()


def test_a_warm_machine_builds_without_any_index(tiny_project, relay, monkeypatch, tmp_path):
    assert relay("build", cwd=tiny_project).code == 0
    first = dist_files(tiny_project)
    shutil.rmtree(tiny_project / "dist")
    shutil.rmtree(tmp_path / "cache" / "builds")  # bundles are rebuilt, wheels come from the cache
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    run = relay("build", "--offline", "--json", cwd=tiny_project)
    assert run.code == 0, run.stderr
    assert {b["status"] for b in run.json()["bundles"]} == {"built"}
    assert dist_files(tiny_project) == first


def test_offline_with_a_cold_wheel_cache_says_what_is_missing(tiny_project, relay):
    run = relay("build", "--offline", cwd=tiny_project)
    assert run.code == 4
    assert "not in the wheel cache" in run.stderr
    assert "x86_64: money==2.1, greeting==1.0" in run.stderr and "arm64: money==2.1;" in run.stderr


def test_a_tampered_wheel_cache_is_refused(tiny_project, relay, tmp_path):
    assert relay("build", cwd=tiny_project).code == 0
    shutil.rmtree(tmp_path / "cache" / "builds")
    for wheel in (tmp_path / "cache" / "wheels").glob("*/greeting-*.whl"):
        wheel.write_bytes(wheel.read_bytes() + b"tampered")
    run = relay("build", "hello", cwd=tiny_project)
    assert run.code == 4
    assert "hash mismatch for greeting==1.0" in run.stderr


def test_handler_importing_a_missing_package_fails_naming_it(tiny_project, relay):
    app = tiny_project / "functions/hello/hello/app.py"
    app.write_text("import yaml_not_locked\n" + app.read_text())
    run = relay("build", "hello", cwd=tiny_project)
    assert run.code == 4
    assert "yaml_not_locked" in run.stderr
    assert "import" in run.stderr
    assert not (tiny_project / "dist/hello.zip").exists(), "a bundle that fails its import check never reaches dist/"


def test_oversize_function_is_refused_with_the_figures(tiny_project, relay):
    big = tiny_project / "functions/pay/blob.bin"
    big.write_bytes(os.urandom(51 * 1024 * 1024))
    run = relay("build", "pay", cwd=tiny_project)
    assert run.code == 5, run.stderr
    assert "52,428,800" in run.stderr or "50" in run.stderr
    assert "blob.bin" in run.stderr
    assert not (tiny_project / "dist/pay.zip").exists()


def test_missing_lock_is_a_clear_error(tiny_project, relay):
    (tiny_project / "functions/hello/requirements.txt").unlink()
    run = relay("build", cwd=tiny_project)
    assert run.code == 6
    assert "relay lock" in run.stderr


def test_bad_config_names_file_key_and_expectation(tiny_project, relay):
    toml = tiny_project / "relay.toml"
    toml.write_text(toml.read_text().replace('runtime = "python3.12"', 'runtime = "python2.7"'))
    run = relay("build", cwd=tiny_project)
    assert run.code == 3
    assert "relay.toml" in run.stderr and "app.runtime" in run.stderr and "python3.12" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_touched_or_damaged_output_is_noticed_by_the_fast_no_op(tiny_project, relay):
    assert relay("build", cwd=tiny_project).code == 0
    fast = relay("build", "--json", cwd=tiny_project)
    assert fast.json()["nothing_changed"] is True

    # touch alone: the fast path is skipped, the content hashes say nothing changed
    app = tiny_project / "functions/hello/hello/app.py"
    os.utime(app, (2_000_000_000, 2_000_000_000))
    touched = relay("build", "--json", cwd=tiny_project)
    assert touched.json()["nothing_changed"] is True

    # a damaged bundle in dist/ is put back from the cache, not reported as up to date
    damaged = tiny_project / "dist/hello.zip"
    damaged.write_bytes(b"not a zip")
    repaired = relay("build", "--json", cwd=tiny_project)
    statuses = {b["name"] + b["architecture"]: b["status"] for b in repaired.json()["bundles"]}
    assert statuses["hellox86_64"] == "cached"
    manifest = json.loads((tiny_project / "dist/hello.manifest.json").read_text())
    assert sha256_of(damaged) == manifest["sha256"]
