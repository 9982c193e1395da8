"""Publishing what `relay build` really produced, and `relay verify --rebuild`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from registry_helpers import RELAY, Workspace

from builder.bundle.pipeline import BuildOptions, build_project
from builder.config import load_project
from builder.errors import VerificationFailed
from builder.registry.factory import trusted_keys
from builder.registry.rebuild import rebuild_release
from builder.registry.signing import generate_key_file
from builder.registry.verify import verify_release

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
REGISTRY = """
[registry]
bucket = "relay-artifacts"
prefix = "relay"
region = "us-east-1"
role = "{role}"

[registry.signing]
kind = "ed25519"
key = "../keys/relay.key"

[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = "../keys/relay.key.pub"
"""
TINY = """\
[app]
name = "tiny"
runtime = "python3.12"

[functions.hello]
source = "functions/hello"
handler = "hello.handler.handle"
layers = ["common"]

[functions.goodbye]
source = "functions/goodbye"
handler = "goodbye.handler.handle"
architecture = "arm64"
layers = ["common"]

[layers.common]
packages = ["libs/shared"]
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=relay tests", "-c", "user.email=tests@relay.invalid", "commit", "-q", "-m", "snapshot")
    return git(repo, "rev-parse", "HEAD").strip()


def new_repo(tmp_path: Path, aws, project_text: str) -> tuple[Path, Path]:
    """A git repository with the project in `app/` and the signing key outside it (never committed)."""
    repo = tmp_path / "repo"
    app = repo / "app"
    app.mkdir(parents=True)
    key = generate_key_file(tmp_path / "keys" / "relay.key")
    shutil.copytree(tmp_path / "keys", repo / "keys")
    (repo / ".gitignore").write_text("dist/\nkeys/*.key\n")
    (app / "relay.toml").write_text(project_text + REGISTRY.format(role=aws.role_arn("registry"), keyid=key.keyid))
    git(repo, "init", "-q")
    aws.client("registry", "s3").create_bucket(Bucket="relay-artifacts")
    return repo, app


def tiny_sources(app: Path, greeting: str = "hello") -> None:
    for name in ("hello", "goodbye"):
        package = app / "functions" / name / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        word = greeting if name == "hello" else "bye"
        (package / "handler.py").write_text(
            f"from shared import greet\n\n\ndef handle(event, context):\n    return {{'message': greet({word!r})}}\n")
    shared = app / "libs" / "shared" / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "__init__.py").write_text("def greet(word):\n    return word.upper()\n")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "relay-cache"
    monkeypatch.setenv("RELAY_CACHE_DIR", str(folder))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return folder


def test_a_real_build_publishes_verifies_and_rebuilds_to_the_same_bytes(aws, tmp_path, cache):
    repo, app = new_repo(tmp_path, aws, TINY)
    tiny_sources(app)
    commit = commit_all(repo)
    project = load_project(app / "relay.toml")
    build_project(project, (), options=BuildOptions(import_check=False))
    index = json.loads((app / "dist" / "index.json").read_text())
    assert {b["zip"] for b in index["bundles"]} == {"hello.zip", "goodbye.zip", "layer-common-x86_64.zip",
                                                   "layer-common-arm64.zip"}

    ws = Workspace(app, None, aws)
    published = ws.relay("publish", "--version", "1.0.0", "--json")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["status"] == "published"
    release = json.loads(ws.get("relay/tiny/releases/1.0.0.json"))
    assert release["git"] == {"commit": commit, "dirty": False}

    store = ws.store()
    assert verify_release(store, "tiny", "1.0.0", trusted_keys(project)).ok
    rebuilt = ws.relay("verify", "--rebuild", "1.0.0", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout)
    assert report["ok"] and report["rebuild"]["ok"] and report["rebuild"]["commit"] == commit
    assert {b["bundle"] for b in report["rebuild"]["bundles"]} == {"hello", "goodbye", "layer-common-x86_64",
                                                                  "layer-common-arm64"}


def test_rebuild_of_a_release_built_from_uncommitted_changes_fails_naming_the_bundle(aws, tmp_path, cache):
    repo, app = new_repo(tmp_path, aws, TINY)
    tiny_sources(app)
    commit_all(repo)
    tiny_sources(app, greeting="hello, uncommitted")  # built and published, never committed
    project = load_project(app / "relay.toml")
    build_project(project, (), options=BuildOptions(import_check=False))
    ws = Workspace(app, None, aws)
    assert ws.relay("publish", "--version", "1.0.0").returncode == 0

    with pytest.raises(VerificationFailed, match="differs for hello$") as caught:
        rebuild_release(project, ws.store(), "1.0.0")
    assert caught.value.exit_code == 8
    cli = ws.relay("verify", "--rebuild", "1.0.0")
    assert cli.returncode == 8 and "differs for hello" in cli.stderr


@pytest.mark.network
@pytest.mark.slow
def test_examples_shop_publishes_and_verify_rebuild_passes(aws, tmp_path, cache):
    repo, app = new_repo(tmp_path, aws, "")
    shutil.rmtree(app)
    shutil.copytree(SHOP, app, ignore=shutil.ignore_patterns("dist", "__pycache__", ".relay"))
    text = (app / "relay.toml").read_text()
    registry = REGISTRY.format(role=aws.role_arn("registry"), keyid=generate_key_file(
        tmp_path / "keys" / "relay.key", force=True).keyid)
    shutil.copy(tmp_path / "keys" / "relay.key.pub", repo / "keys" / "relay.key.pub")
    shutil.copy(tmp_path / "keys" / "relay.key", repo / "keys" / "relay.key")
    start = text.index("[registry]")
    end = text.index("[environments.staging]")
    (app / "relay.toml").write_text(text[:start] + registry.lstrip() + "\n" + text[end:])
    commit_all(repo)
    ws = Workspace(app, None, aws)

    built = subprocess.run([str(RELAY), "-C", str(app), "build"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert ws.relay("publish", "--version", "2.3.0").returncode == 0

    done = ws.relay("verify", "--rebuild", "2.3.0", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["rebuild"]["ok"]
    assert len(report["rebuild"]["bundles"]) == 5


def test_rebuild_uses_the_recorded_source_date_epoch(aws, tmp_path, cache, monkeypatch):
    repo, app = new_repo(tmp_path, aws, TINY)
    tiny_sources(app)
    commit_all(repo)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    project = load_project(app / "relay.toml")
    build_project(project, (), options=BuildOptions(import_check=False))
    manifest = json.loads((app / "dist" / "hello.manifest.json").read_text())
    assert manifest["builder"]["source_date_epoch"] == 1700000000
    ws = Workspace(app, None, aws)
    assert ws.relay("publish", "--version", "1.0.0").returncode == 0

    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # the verifier's shell does not know the build's epoch
    report = rebuild_release(project, ws.store(), "1.0.0")
    assert report.ok
