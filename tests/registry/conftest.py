"""Registry fixtures: a project wired to the moto registry (see registry_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import Workspace, new_workspace


@pytest.fixture
def workspace(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    return new_workspace(aws, tmp_path)
