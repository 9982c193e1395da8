"""Issue 11, items 8, 11, 12: names and documents read from dist/ and the registry are checked, never trusted.

A traversal name in a dist/ manifest, a malformed release document in the
bucket, a signing key pasted without its PEM header: each gets a typed error
with its documented exit code through the CLI, and nothing is written where
it should not be.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "registry"))

from registry_helpers import Workspace, make_dist, new_workspace
from test_11c_config import assert_clean_error, assert_one_json_document

from builder.bundle.digest import sha256_file
from builder.errors import VerificationFailed
from builder.fsutil import inside
from builder.registry.layout import Layout

RELEASE_11 = "relay/shop/releases/1.1.0.json"


@pytest.fixture
def workspace(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_workspace(aws, tmp_path)


def traversal_layer(dist: Path, name: str = "../../..") -> None:
    """Rename layer common to `name` in every dist/ manifest, keeping the files' digests consistent."""
    for path in dist.glob("*.manifest.json"):
        doc = json.loads(path.read_text())
        if doc["kind"] == "layer":
            doc["name"] = name
        doc["layers"] = [{**ref, "name": name} for ref in doc.get("layers", ())]
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    index = json.loads((dist / "index.json").read_text())
    for entry in index["bundles"]:
        if entry["kind"] == "layer":
            entry["name"] = name
    (dist / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


# -- item 8: traversal names ---------------------------------------------------------------------


def test_a_traversal_layer_name_in_dist_fails_publish_before_any_write(workspace: Workspace, relay) -> None:
    traversal_layer(workspace.root / "dist")
    run = relay("publish", "--version", "1.0.0", cwd=workspace.root)
    assert_clean_error(run, 8, "'../../..'", "not a safe name")
    assert workspace.stored_keys() == []  # nothing written: no key with ../ in it
    assert_one_json_document(relay("publish", "--version", "1.0.0", "--json", cwd=workspace.root), 8)


def test_an_index_entry_naming_a_file_outside_dist_is_refused(workspace: Workspace, relay) -> None:
    index_path = workspace.root / "dist" / "index.json"
    index = json.loads(index_path.read_text())
    index["bundles"][0]["manifest"] = "../relay.toml"
    index_path.write_text(json.dumps(index))
    run = relay("publish", "--version", "1.0.0", cwd=workspace.root)
    assert_clean_error(run, 8, "../relay.toml")
    assert workspace.stored_keys() == []


def test_a_release_document_with_a_traversal_name_fails_verify(workspace: Workspace, relay) -> None:
    assert relay("publish", "--version", "1.0.0", cwd=workspace.root).code == 0
    key = "relay/shop/releases/1.0.0.json"
    doc = json.loads(workspace.get(key))
    bundle = next(iter(doc["layers"]))
    doc["layers"][bundle]["name"] = "../../.."
    workspace.put(key, json.dumps(doc).encode())
    run = relay("verify", "1.0.0", cwd=workspace.root)
    assert run.code == 8, run
    assert "../../.." in run.stdout + run.stderr and "not a safe name" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_layout_and_inside_refuse_every_traversal() -> None:
    layout = Layout("relay")
    for bad in ("../../..", "a/b", "..", "", "a\0b"):
        with pytest.raises(VerificationFailed):
            layout.layer_dir("shop", bad, "x86_64", "0" * 64)
        with pytest.raises(VerificationFailed):
            layout.function_dir("shop", bad, "1.0.0")
        with pytest.raises(VerificationFailed):
            layout.release(bad, "1.0.0")
        with pytest.raises(VerificationFailed):
            layout.ledger_prefix("shop", bad)
    with pytest.raises(VerificationFailed):
        layout.release("shop", "../1.0.0")
    with pytest.raises(VerificationFailed):
        inside(Path("/tmp/relay-x"), "../../etc/passwd.zip")
    assert layout.ledger_prefix("shop", "prod") == "relay/shop/ledger/prod/"
    assert inside(Path("/tmp/relay-x"), "layer-common-x86_64.zip") == Path("/tmp/relay-x/layer-common-x86_64.zip").resolve()


# -- item 12: a malformed release document blocks nothing but itself -----------------------------


BAD_RELEASES = {
    "not JSON": b"{not json",
    "functions a list": None,  # filled from the real document below
    "missing keys": b'{"schema": "relay.release/v1", "app": "shop"}',
    "wrong types": None,
    "a number": b"42",
}


def _bad_release(kind: str, real: dict) -> bytes:
    if kind == "functions a list":
        return json.dumps({**real, "functions": list(real["functions"])}).encode()
    if kind == "wrong types":
        fn = next(iter(real["functions"]))
        return json.dumps({**real, "functions": {fn: {**real["functions"][fn], "sha256": 7, "layers": "x"}}}).encode()
    body = BAD_RELEASES[kind]
    assert body is not None
    return body


@pytest.mark.parametrize("kind", list(BAD_RELEASES))
def test_a_malformed_release_is_skipped_or_refused_never_a_crash(workspace: Workspace, relay, kind: str) -> None:
    assert relay("publish", "--version", "1.0.0", cwd=workspace.root).code == 0
    make_dist(workspace.root, variant="b")
    assert relay("publish", "--version", "1.1.0", cwd=workspace.root).code == 0
    workspace.put(RELEASE_11, _bad_release(kind, json.loads(workspace.get(RELEASE_11))))

    listing = relay("versions", "--json", cwd=workspace.root)
    assert listing.code == 0, listing
    assert [v["version"] for v in listing.json()["versions"]] == ["1.0.0"]  # the bad one is skipped
    assert [u["version"] for u in listing.json()["unreadable"]] == ["1.1.0"]  # and reported
    human = relay("versions", cwd=workspace.root)
    assert human.code == 0 and "1.0.0" in human.stdout, human
    assert "warning: 1.1.0 skipped" in human.stderr, human

    diff = relay("diff", "1.0.0", "1.1.0", cwd=workspace.root)
    assert_clean_error(diff, 8, "1.1.0")

    verify = relay("verify", "1.1.0", "--json", cwd=workspace.root)
    assert verify.code == 8, verify
    json.loads(verify.stdout)
    assert "Traceback" not in verify.stderr

    make_dist(workspace.root, variant="c")
    bumped = relay("publish", "--bump", "patch", "--json", cwd=workspace.root)
    assert bumped.code in (0, 8), bumped
    assert "Traceback" not in bumped.stderr and "internal error" not in bumped.stderr
    json.loads(bumped.stdout)
    if bumped.code == 0:
        assert bumped.json()["version"] not in ("1.0.0", "1.1.0")


# -- item 11: never echo a secret -----------------------------------------------------------------


def test_a_headerless_key_in_relay_signing_key_is_never_echoed(workspace: Workspace, relay,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pem = workspace.key.private_path.read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    monkeypatch.setenv("RELAY_SIGNING_KEY", body)
    for args in (("publish", "--version", "1.0.0"), ("publish", "--version", "1.0.0", "--json")):
        run = relay(*args, cwd=workspace.root)
        assert_clean_error(run, 3, "RELAY_SIGNING_KEY")
        assert body not in run.stdout + run.stderr
        assert body[:16] not in run.stdout + run.stderr
    assert workspace.stored_keys() == []


def test_non_ascii_key_material_is_a_config_error(workspace: Workspace, relay, monkeypatch: pytest.MonkeyPatch) -> None:
    pem = workspace.key.private_path.read_text()
    monkeypatch.setenv("RELAY_SIGNING_KEY", pem.replace("A", "Ä", 1))
    run = relay("publish", "--version", "1.0.0", cwd=workspace.root)
    assert_clean_error(run, 3, "RELAY_SIGNING_KEY", "non-ASCII")
    monkeypatch.delenv("RELAY_SIGNING_KEY")

    public = workspace.root / "keys" / "relay.key.pub"
    public.write_text(public.read_text().replace("A", "é", 1), encoding="utf-8")
    run = relay("verify", "1.0.0", cwd=workspace.root)
    assert_clean_error(run, 3, "trusted key")


# -- invoke --version writes only inside its temporary folder ------------------------------------


def test_invoke_of_a_release_with_a_traversal_layer_writes_nothing_outside(workspace: Workspace, relay,
                                                                           tmp_path: Path) -> None:
    assert relay("publish", "--version", "1.0.0", cwd=workspace.root).code == 0
    key = "relay/shop/releases/1.0.0.json"
    doc = json.loads(workspace.get(key))
    doc["functions"]["orders"]["layers"] = ["../../../../../../../../" + str(tmp_path / "escaped")]
    workspace.put(key, json.dumps(doc).encode())
    before = sha256_file(workspace.config)
    run = relay("invoke", "orders", "--version", "1.0.0", cwd=workspace.root)
    assert_clean_error(run, 8)
    assert not list(tmp_path.glob("escaped*"))
    assert sha256_file(workspace.config) == before


# -- verify --rebuild writes only inside its temporary folder --------------------------------------


def test_rebuild_of_a_commit_whose_config_puts_dist_outside_writes_nothing_there(aws, tmp_path: Path, relay,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from test_registry_real_build import TINY, commit_all, new_repo, tiny_sources

    from builder.bundle.pipeline import BuildOptions, build_project
    from builder.config import load_project

    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    outside = tmp_path / "outside-dist"
    repo, app = new_repo(tmp_path, aws, TINY.replace('runtime = "python3.12"\n',
                                                     f'runtime = "python3.12"\ndist = "{outside}"\n', 1))
    tiny_sources(app)
    commit_all(repo)
    build_project(load_project(app / "relay.toml"), (), options=BuildOptions(import_check=False))
    assert relay("publish", "--version", "1.0.0", cwd=app).code == 0
    before = {p.name: p.stat().st_mtime_ns for p in outside.iterdir()}
    run = relay("verify", "--rebuild", "1.0.0", cwd=app)
    assert_clean_error(run, 8, "outside")
    assert {p.name: p.stat().st_mtime_ns for p in outside.iterdir()} == before
