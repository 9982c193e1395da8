"""Remote fixtures: the shop app (tests/promote's helpers) with its functions behind alias `live` in staging.

`shop` deploys with boto3 (create, publish version 1, alias `live`): seconds,
where a build, publish and promote per test costs ten. The whole way with
relay (build, publish, promote, then invoke and logs) is test_remote_sandbox.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The promotion tests' helpers lay out and promote a real small app; reuse them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import FUNCTIONS, Shop, new_shop
from remote_helpers import deploy


@pytest.fixture
def bare_shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


@pytest.fixture
def shop(bare_shop: Shop) -> Shop:
    """Each function's version 1 behind alias `live` in staging; nothing in prod."""
    for name in FUNCTIONS:
        deploy(bare_shop, "staging", name)
    return bare_shop

