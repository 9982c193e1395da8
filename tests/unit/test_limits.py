"""Lambda limits: figures and biggest contributors in every refusal."""

from __future__ import annotations

import os
import re

import pytest

from builder.bundle import limits
from builder.bundle.limits import LAYERS_MAX, UNZIPPED_MAX, ZIPPED_MAX, check_bundle, check_function, check_layer_count
from builder.bundle.zipwriter import BundleStats, collect_tree, write_zip
from builder.errors import LimitExceeded

MIB = 1024 * 1024


def stats(zipped: int, contributors: list[tuple[str, int]]) -> BundleStats:
    return BundleStats(
        sha256="0" * 64,
        code_sha256="",
        content_digest="0" * 64,
        zipped_size=zipped,
        unzipped_size=sum(size for _, size in contributors),
        files=len(contributors),
        contributors=tuple(sorted(contributors, key=lambda c: -c[1])),
    )


def test_limits_are_lambdas():
    assert (ZIPPED_MAX, UNZIPPED_MAX, LAYERS_MAX) == (52_428_800, 262_144_000, 5)


def test_layer_count():
    check_layer_count("orders", ["a", "b", "c", "d", "e"])
    with pytest.raises(LimitExceeded) as caught:
        check_layer_count("orders", ["a", "b", "c", "d", "e", "f"])
    assert caught.value.message == "orders: uses 6 layers > 5 limit (a, b, c, d, e, f)"
    assert caught.value.exit_code == 5
    assert "5" in caught.value.hint


def test_bundle_zipped_limit():
    check_bundle("orders", stats(ZIPPED_MAX, [("big.bin", 60 * MIB)]))
    with pytest.raises(LimitExceeded) as caught:
        check_bundle("orders", stats(ZIPPED_MAX + 1, [("big.bin", 60 * MIB), ("orders", 2048)]))
    message = caught.value.message
    assert message.startswith("orders: 52,428,801 bytes (50.0 MiB) zipped > 52,428,800 bytes (50.0 MiB) limit;")
    assert "big.bin 60.0 MiB, orders 2.0 KiB" in message


def test_function_with_layers_unzipped_limit():
    function = stats(1_000_000, [("big.bin", 268 * MIB), ("orders", 3_000), ("python", 10)])
    common = stats(
        2_000_000,
        [("python/pydantic_core", int(4.1 * MIB)), ("python/pydantic", 900_000), ("python/shared", 512)],
    )
    extra = stats(10_000, [("python/six.py", 40_000)])
    total = function.unzipped_size + common.unzipped_size + extra.unzipped_size
    assert total > UNZIPPED_MAX
    with pytest.raises(LimitExceeded) as caught:
        check_function("orders", function, {"common": common, "extra": extra})
    message = caught.value.message
    assert message.startswith(
        f"orders: {total:,} bytes ({total / MIB:.1f} MiB) unzipped with its layers"
        " > 262,144,000 bytes (250.0 MiB) limit;"
    )
    biggest = message.split("biggest: ", 1)[1]
    assert biggest == (
        "big.bin 268.0 MiB (orders), python/pydantic_core 4.1 MiB (layer common), "
        "python/pydantic 878.9 KiB (layer common), python/six.py 39.1 KiB (layer extra), orders 2.9 KiB (orders)"
    )
    assert caught.value.exit_code == 5 and caught.value.hint


def test_function_at_the_limit_passes():
    function = stats(1_000, [("app.py", UNZIPPED_MAX - 100)])
    check_function("orders", function, {"common": stats(10, [("python/x", 100)])})


def test_function_checks_its_zipped_size_and_layer_count():
    with pytest.raises(LimitExceeded, match="zipped"):
        check_function("orders", stats(ZIPPED_MAX + 1, [("a", 1)]), {})
    layers = {f"l{i}": stats(1, [("python/x", 1)]) for i in range(6)}
    with pytest.raises(LimitExceeded, match="6 layers"):
        check_function("orders", stats(1, [("a", 1)]), layers)


def test_real_bundle_over_a_lowered_zipped_limit(tmp_path, monkeypatch):
    # Real stats from a real zip: incompressible bytes stay big when zipped.
    src = tmp_path / "src"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(MIB))
    (src / "app.py").write_text("def handler(e, c): return 1\n")
    real = write_zip(collect_tree(src), tmp_path / "b.zip", epoch=0)
    monkeypatch.setattr(limits, "ZIPPED_MAX", 512 * 1024)
    with pytest.raises(LimitExceeded) as caught:
        check_bundle("orders", real)
    figures = r"orders: 1,0\d\d,\d{3} bytes \(1\.0 MiB\) zipped > 524,288 bytes \(0\.5 MiB\) limit"
    assert re.search(figures, caught.value.message)
    assert "blob.bin 1.0 MiB, app.py 28 bytes" in caught.value.message
