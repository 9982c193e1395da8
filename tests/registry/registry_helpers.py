"""Registry test helpers: a small project with a signing key, a fabricated dist/, the registry bucket.

The dist/ is made here (small deterministic zips and valid manifests), the way
`relay build` lays it out, so these tests do not depend on building; one test
in test_real_build.py publishes a real build.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import attrs

from builder.aws.session import RequestCounter
from builder.config import Project, load_project
from builder.models import GitInfo, LayerRef, LockInfo, Manifest
from builder.registry.factory import open_signer, open_store
from builder.registry.publish import PublishResult, VersionRequest, publish
from builder.registry.signing import GeneratedKey, generate_key_file
from builder.registry.store import S3Store

BUCKET = "relay-artifacts"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RELAY = Path(sys.executable).with_name("relay")

CONFIG = """\
[app]
name = "shop"
runtime = "python3.12"
architecture = "x86_64"

[functions.orders]
source = "functions/orders"
handler = "orders.handler.handle"
layers = ["common"]

[functions.billing]
source = "functions/billing"
handler = "billing.handler.handle"
architecture = "arm64"
layers = ["common"]

[layers.common]
packages = ["libs/shared"]

[registry]
bucket = "{bucket}"
prefix = "relay"
region = "us-east-1"
role = "{role}"
{signing}
[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = "keys/relay.key.pub"
"""

ED25519_SIGNING = '\n[registry.signing]\nkind = "ed25519"\nkey = "keys/relay.key"\n'


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _files_digest(files: dict[str, str | bytes]) -> str:
    lines = [f"{name} {hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()}"
             for name, data in sorted(files.items())]
    return "\n".join(lines)


def write_bundle(dist: Path, manifest_fields: dict, files: dict[str, str | bytes]) -> Manifest:
    data = zip_bytes(files)
    digest = hashlib.sha256(data)
    manifest = Manifest(
        sha256=digest.hexdigest(),
        code_sha256=base64.b64encode(digest.digest()).decode(),
        content_digest=_hex(_files_digest(files)),
        zipped_size=len(data),
        unzipped_size=sum(len(t) for t in files.values()),
        files=len(files),
        source_sha256=_hex("source" + _files_digest(files)),
        build_key=_hex("key" + _files_digest(files) + manifest_fields["architecture"]),
        relay_version="0.1.0",
        zlib_version=zlib.ZLIB_RUNTIME_VERSION,
        git=GitInfo(commit=COMMIT, dirty=False),
        **manifest_fields,
    )
    (dist / f"{manifest.bundle_name}.zip").write_bytes(data)
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
    (dist / f"{manifest.bundle_name}.manifest.json").write_text(text, encoding="utf-8")
    return manifest


def make_dist(root: Path, *, variant: str = "a", extra_files: dict[str, str | bytes] | None = None) -> Path:
    """dist/ as `relay build` leaves it: layer common (x86_64, arm64), orders (x86_64), billing (arm64).

    `variant` changes the functions' code (the layer stays the same bytes).
    """
    dist = root / "dist"
    dist.mkdir(exist_ok=True)
    for old in dist.iterdir():
        old.unlink()
    lock = LockInfo(path="layers/common/requirements.txt", sha256=_hex("lock"),
                    packages=("pydantic==2.9.2", "typing-extensions==4.12.2"))
    common = {"python/shared/__init__.py": "VERSION = 1\n"}
    layers = {}
    for arch in ("x86_64", "arm64"):
        layers[arch] = write_bundle(dist, {"app": "shop", "name": "common", "kind": "layer", "runtime": "python3.12",
                                               "architecture": arch, "source_paths": ("libs/shared",), "lock": lock},
                                    {**common, "python/shared/arch.py": f"ARCH = {arch!r}\n"})
    functions = {"orders": "x86_64", "billing": "arm64"}
    for name, arch in functions.items():
        handler = f"def handle(event, context):\n    return {{'v': {variant!r}}}\n"
        files = {f"{name}/__init__.py": "", f"{name}/handler.py": handler}
        files.update(extra_files or {})
        write_bundle(dist, {"app": "shop", "name": name, "kind": "function", "runtime": "python3.12", "architecture": arch,
                                "handler": f"{name}.handler.handle", "source_paths": (f"functions/{name}",),
                                "layers": (LayerRef("common", layers[arch].sha256),)}, files)
    bundles = [_index_entry("layer", "common", arch) for arch in ("arm64", "x86_64")]
    bundles += [_index_entry("function", name, arch) for name, arch in functions.items()]
    index = {"schema": "relay.build/v1", "app": "shop", "runtime": "python3.12", "bundles": bundles}
    (dist / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dist


def _index_entry(kind: str, name: str, arch: str) -> dict:
    stem = f"layer-{name}-{arch}" if kind == "layer" else name
    return {"kind": kind, "name": name, "architecture": arch, "zip": f"{stem}.zip",
            "manifest": f"{stem}.manifest.json", "lock": "layers/common/requirements.txt" if kind == "layer" else None}


@attrs.define
class Workspace:
    """A project folder wired to the moto registry, with helpers to publish and run the CLI."""

    root: Path
    key: GeneratedKey
    aws: object
    _s3: object = None

    @property
    def config(self) -> Path:
        return self.root / "relay.toml"

    def project(self) -> Project:
        return load_project(self.config)

    def store(self, counter: RequestCounter | None = None) -> S3Store:
        return open_store(self.project(), counter=counter)

    def publish(self, version: str | None = None, bump: str | None = None, *, store=None) -> PublishResult:
        project = self.project()
        store = store or self.store()
        return publish(project, store, open_signer(project, store), VersionRequest(version=version, bump=bump))

    def write_config(self, *, signing: str = ED25519_SIGNING, keyid: str | None = None) -> None:
        self.config.write_text(CONFIG.format(bucket=BUCKET, role=self.aws.role_arn("registry"), signing=signing,
                                             keyid=keyid or self.key.keyid), encoding="utf-8")

    def relay(self, *args: str) -> subprocess.CompletedProcess:
        """Run the real `relay` command line in this project."""
        return subprocess.run([str(RELAY), "-C", str(self.root), *args], capture_output=True, text=True,
                              env=dict(os.environ), timeout=300)

    def s3(self):
        if self._s3 is None:
            self._s3 = self.aws.client("registry", "s3")
        return self._s3

    def snapshot(self) -> dict[str, bytes]:
        """Every object of the registry and its bytes."""
        return {k: self.get(k) for k in self.stored_keys()}

    def stored_keys(self, prefix: str = "relay/") -> list[str]:
        """The registry bucket's object keys under `prefix`, sorted (not named keys(): linters read that as a dict)."""
        paginator = self.s3().get_paginator("list_objects_v2")
        return sorted(o["Key"] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix) for o in page.get("Contents", ()))

    def get(self, key: str) -> bytes:
        return self.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.s3().put_object(Bucket=BUCKET, Key=key, Body=body)


def new_workspace(aws, tmp_path: Path) -> Workspace:
    root = tmp_path / "shop"
    for folder in ("functions/orders/orders", "functions/billing/billing", "libs/shared/shared", "keys"):
        (root / folder).mkdir(parents=True)
    key = generate_key_file(root / "keys" / "relay.key")
    ws = Workspace(root, key, aws)
    ws.write_config()
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    make_dist(root)
    return ws


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


class Crash(Exception):
    """The publishing process died (injected at the store seam)."""


class FailingStore:
    """A store whose process 'dies' at its N-th write: that write and every later one raise Crash.

    Writes already done stay done, exactly like a killed process; reads pass through.
    """

    def __init__(self, inner: S3Store, fail_at: int | None = None) -> None:
        import threading

        self.inner = inner
        self.layout = inner.layout
        self.fail_at = fail_at
        self.written: list[str] = []
        self._count = 0
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.inner.where

    def _write(self, key: str) -> None:
        with self._lock:
            self._count += 1
            if self.fail_at is not None and self._count >= self.fail_at:
                raise Crash(f"killed at write {self._count} ({key})")

    def _done(self, key: str) -> None:
        with self._lock:
            self.written.append(key)

    def head(self, key):
        return self.inner.head(key)

    def read(self, key):
        return self.inner.read(key)

    def read_optional(self, key):
        return self.inner.read_optional(key)

    def iter_chunks(self, key):
        return self.inner.iter_chunks(key)

    def list(self, prefix, *, page_size=1000):
        return self.inner.list(prefix, page_size=page_size)

    def create(self, key, body, *, content_type="application/json"):
        self._write(key)
        self.inner.create(key, body, content_type=content_type)
        self._done(key)

    def create_file(self, key, path, *, checksum_sha256=None, on_part=None):
        self._write(key)
        self.inner.create_file(key, path, checksum_sha256=checksum_sha256, on_part=on_part)
        self._done(key)
