"""`relay build` on examples/shop with real packages from the index (network)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from bundle_helpers import sha256_of

from builder import schemas

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
BUNDLES = {"orders", "billing", "notify", "layer-common-x86_64", "layer-common-arm64"}

pytestmark = [pytest.mark.network, pytest.mark.slow]


def copy_shop(dest: Path) -> Path:
    shutil.copytree(SHOP, dest, ignore=shutil.ignore_patterns("dist", "__pycache__", ".relay"))
    return dest


def zips(root: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted((root / "dist").glob("*.zip"))}


@pytest.fixture(scope="module")
def wheel_cache(tmp_path_factory) -> Path:
    """One warm wheel cache for the module: downloads happen once."""
    return tmp_path_factory.mktemp("wheels-cache")


def use_cache(monkeypatch, base: Path, wheels: Path, name: str) -> None:
    """A fresh build cache that shares the downloaded wheels (a warm machine, cold build)."""
    cache = base / name
    cache.mkdir()
    (wheels / "wheels").mkdir(exist_ok=True)
    (cache / "wheels").symlink_to(wheels / "wheels")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(cache))


def test_shop_builds_the_same_bytes_in_two_folders(tmp_path, monkeypatch, relay, wheel_cache):
    first = copy_shop(tmp_path / "a" / "shop")
    use_cache(monkeypatch, tmp_path, wheel_cache, "cache-a")
    run = relay("build", "--json", cwd=first)
    assert run.code == 0, run.stderr
    assert {Path(b["zip"]).stem for b in run.json()["bundles"]} == BUNDLES
    for manifest in (first / "dist").glob("*.manifest.json"):
        assert schemas.errors("manifest", json.loads(manifest.read_text())) == []

    second = copy_shop(tmp_path / "other-place" / "x" / "shop")
    for path in second.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    use_cache(monkeypatch, tmp_path, wheel_cache, "cache-b")  # nothing from the first build is reused
    monkeypatch.setenv("TZ", "America/St_Johns")
    time.tzset()
    old = os.umask(0o027)
    try:
        again = relay("build", cwd=second)
    finally:
        os.umask(old)
        monkeypatch.delenv("TZ")
        time.tzset()
    assert again.code == 0, again.stderr
    assert zips(second) == zips(first)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_shop_wrong_hash_fails_for_both_architectures(tmp_path, monkeypatch, relay, wheel_cache, arch):
    shop = copy_shop(tmp_path / "shop")
    use_cache(monkeypatch, tmp_path, wheel_cache, "cache")
    lock = shop / "functions/notify/requirements.txt"
    text = lock.read_text()
    # Every pinned hash of charset-normalizer replaced by another valid-looking one.
    import re

    lock.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "ab" * 32, text))
    toml = shop / "relay.toml"
    toml.write_text(toml.read_text().replace('handler = "notify.handler.handle"',
                                             f'handler = "notify.handler.handle"\narchitecture = "{arch}"'))
    run = relay("build", "notify", cwd=shop)
    assert run.code == 4, run.stderr
    assert "hash mismatch for charset-normalizer" in run.stderr
    assert not (shop / "dist/notify.zip").exists()
