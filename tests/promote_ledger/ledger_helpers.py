"""Helpers for the ledger tests: records, clocks, stores that interleave other writers, dists with locks."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path

from builder.aws.s3 import S3Bucket
from builder.aws.session import AwsTarget, open_session
from builder.models import LayerRef, LockInfo
from builder.promote.records import FunctionChange, LedgerRecord, format_time
from builder.registry.layout import Layout
from builder.registry.store import S3Store

BUCKET = "relay-artifacts"
T0 = dt.datetime(2026, 11, 26, 19, 30, tzinfo=dt.UTC)
ALICE = "arn:aws:sts::222222222222:assumed-role/relay-deployer/alice"
BOB = "arn:aws:sts::222222222222:assumed-role/relay-deployer/bob"
SHA = {name: (name * 64)[:64] for name in "abcdef0123456789"}

ENVIRONMENTS = """
[environments.staging]
account = "222222222222"
region = "us-east-1"
role = "arn:aws:iam::222222222222:role/relay-deployer"

[environments.prod]
account = "333333333333"
region = "us-east-1"
role = "relay-deployer"
requires = "staging"
soak = "1h"
alarms = ["shop-errors", "shop-latency"]
"""


def registry_store(aws) -> S3Store:
    session = open_session(AwsTarget(region=aws.region, role=aws.role_arn("registry")))
    return S3Store(S3Bucket(session, BUCKET), Layout("relay"))


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def change(function: str, before: tuple[str | None, str | None, str | None],
           after: tuple[str | None, str | None, str | None]) -> FunctionChange:
    """A change from (lambda version, artifact, digest) to (lambda version, artifact, digest)."""
    return FunctionChange(function, before[0], after[0], before[1], after[1], before[2], after[2])


def record(seq: int, *, event: str = "promote", status: str = "succeeded", at: dt.datetime = T0,
           changes=(), from_version=None, to_version=None, opened: int | None = None, **extra) -> LedgerRecord:
    """A hand-made record; terminal records close the record before them unless `opened` says otherwise."""
    if status in ("succeeded", "failed", "reverted") and opened is None:
        opened = seq - 1 if seq > 1 else 1
    if status == "started":
        extra.setdefault("lease_until", format_time(at + dt.timedelta(minutes=30)))
    return LedgerRecord(seq=seq, app="shop", env="staging", event=event, status=status, actor=ALICE,
                        at=format_time(at), from_version=from_version, to_version=to_version,
                        changes=tuple(changes), opened=opened, **extra)


class HookedStore:
    """A store that runs `before_create(key)` / `after_list(prefix)` hooks: other writers, deterministically."""

    def __init__(self, inner: S3Store) -> None:
        self.inner = inner
        self.layout = inner.layout
        self.before_create: Callable[[str], None] | None = None
        self.after_list: Callable[[str], None] | None = None
        self.creates: list[str] = []
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.inner.where

    def head(self, key):
        return self.inner.head(key)

    def read(self, key):
        return self.inner.read(key)

    def read_optional(self, key):
        return self.inner.read_optional(key)

    def iter_chunks(self, key):
        return self.inner.iter_chunks(key)

    def list(self, prefix, *, page_size=1000):
        found = list(self.inner.list(prefix, page_size=page_size))
        if self.after_list is not None:
            self.after_list(prefix)
        return iter(found)

    def create(self, key, body, *, content_type="application/json"):
        with self._lock:
            self.creates.append(key)
        if self.before_create is not None:
            self.before_create(key)
        self.inner.create(key, body, content_type=content_type)

    def create_file(self, key, path, *, checksum_sha256=None, on_part=None):
        self.inner.create_file(key, path, checksum_sha256=checksum_sha256, on_part=on_part)


def once(hook: Callable[[str], None]) -> Callable[[str], None]:
    """`hook`, run on the first call only."""
    done = []

    def run(arg: str) -> None:
        if not done:
            done.append(True)
            hook(arg)

    return run


# -- a publishable project whose releases differ in code and locks --------------------------------


def new_release_workspace(aws, tmp_path: Path):
    from registry_helpers import new_workspace

    ws = new_workspace(aws, tmp_path)
    ws.config.write_text(ws.config.read_text(encoding="utf-8") + ENVIRONMENTS, encoding="utf-8")
    return ws


def write_dist(root: Path, *, orders: str = "a", billing: str = "a", packages: tuple[str, ...] = (),
               notify: bool = False) -> Path:
    """dist/ with layer common (x86_64 + arm64, locking `packages`), orders (x86_64), billing (arm64), maybe notify."""
    from registry_helpers import _hex, _index_entry, write_bundle

    dist = root / "dist"
    dist.mkdir(exist_ok=True)
    for old in dist.iterdir():
        old.unlink()
    lock = LockInfo(path="layers/common/requirements.txt", sha256=_hex("lock" + json.dumps(packages)), packages=packages)
    layers = {}
    for arch in ("x86_64", "arm64"):
        files = {"python/shared/__init__.py": "VERSION = 1\n", "python/shared/pins.py": f"PINS = {list(packages)!r}\n"}
        layers[arch] = write_bundle(dist, {"app": "shop", "name": "common", "kind": "layer", "runtime": "python3.12",
                                               "architecture": arch, "source_paths": ("libs/shared",), "lock": lock}, files)
    functions = {"orders": ("x86_64", orders), "billing": ("arm64", billing)}
    if notify:
        functions["notify"] = ("x86_64", "a")
    for name, (arch, variant) in functions.items():
        files = {f"{name}/__init__.py": "", f"{name}/handler.py": f"def handle(event, context):\n    return {variant!r}\n"}
        write_bundle(dist, {"app": "shop", "name": name, "kind": "function", "runtime": "python3.12", "architecture": arch,
                                "handler": f"{name}.handler.handle", "source_paths": (f"functions/{name}",),
                                "layers": (LayerRef("common", layers[arch].sha256),)}, files)
    bundles = [_index_entry("layer", "common", arch) for arch in ("arm64", "x86_64")]
    bundles += [_index_entry("function", name, arch) for name, (arch, _) in functions.items()]
    index = {"schema": "relay.build/v1", "app": "shop", "runtime": "python3.12", "bundles": bundles}
    (dist / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dist
