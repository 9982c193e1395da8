"""Promotion fixtures: the small shop app, built, wired to the moto accounts (see promote_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from promote_helpers import Shop, new_shop


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)
