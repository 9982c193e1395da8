"""`relay invoke --version V`: run a function as published in a release, not as in dist/ (moto S3)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import boto3

from builder.registry.signing import generate_key_file

PROJECT = textwrap.dedent("""\
    [app]
    name = "vers"
    runtime = "python3.12"

    [functions.hello]
    source = "functions/hello"
    handler = "hello.app.handle"
    layers = ["base"]

    [layers.base]
    packages = ["libs/base"]

    [registry]
    bucket = "vers-artifacts"
    region = "us-east-1"

    [registry.signing]
    kind = "ed25519"
    key = "relay.key"

    [[registry.trusted_keys]]
    keyid = "{keyid}"
    public_key = "relay.key.pub"
    """)


def write_app(root: Path, answer: str) -> None:
    package = root / "functions/hello/hello"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(f"from base import tag\n\ndef handle(event, context):\n    return tag({answer!r})\n")
    (root / "libs/base/base").mkdir(parents=True, exist_ok=True)
    (root / "libs/base/base/__init__.py").write_text("def tag(text):\n    return 'answer: ' + text\n")


def test_invoke_runs_a_published_release_verified(aws, tmp_path, relay, monkeypatch):
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    root = tmp_path / "vers"
    root.mkdir()
    key = generate_key_file(root / "relay.key")
    (root / "relay.toml").write_text(PROJECT.format(keyid=key.keyid))
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="vers-artifacts")
    write_app(root, "one")
    assert relay("build", cwd=root).code == 0
    published = relay("publish", "--version", "1.0.0", cwd=root)
    assert published.code == 0, published.stderr

    write_app(root, "two")  # dist/ now holds another build
    assert relay("build", cwd=root).code == 0

    current = relay("invoke", "hello", "--json", cwd=root)
    assert current.code == 0, current.stderr
    assert current.json()["result"] == "answer: two"
    released = relay("invoke", "hello", "--version", "1.0.0", "--json", cwd=root)
    assert released.code == 0, released.stderr
    assert released.json()["result"] == "answer: one"

    missing = relay("invoke", "hello", "--version", "9.9.9", cwd=root)
    assert missing.code == 12 and "9.9.9" in missing.stderr


def test_invoke_of_a_tampered_release_is_refused(aws, tmp_path, relay, monkeypatch):
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    root = tmp_path / "vers"
    root.mkdir()
    key = generate_key_file(root / "relay.key")
    (root / "relay.toml").write_text(PROJECT.format(keyid=key.keyid))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="vers-artifacts")
    write_app(root, "one")
    assert relay("build", cwd=root).code == 0
    assert relay("publish", "--version", "1.0.0", cwd=root).code == 0
    manifest = json.loads((root / "dist/hello.manifest.json").read_text())
    blob = f"relay/blobs/sha256/{manifest['sha256']}"
    body = s3.get_object(Bucket="vers-artifacts", Key=blob)["Body"].read()
    s3.put_object(Bucket="vers-artifacts", Key=blob, Body=body[:-1] + bytes([body[-1] ^ 1]))

    refused = relay("invoke", "hello", "--version", "1.0.0", cwd=root)
    assert refused.code == 8, refused.stderr
