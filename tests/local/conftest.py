"""Fixtures for `relay invoke`, `relay init` and the Dockerfile: small real projects, built for real.

The projects have no third-party requirements (a layer with a local package
only), so they build offline; each is built once per module with relay's own
build, into a cache of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_helpers import build, make_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny app of local_helpers, built into its dist/ (module-wide: invoking never changes dist/)."""
    base = tmp_path_factory.mktemp("invoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELAY_CACHE_DIR", str(base / "cache"))
        root = make_app(base / "tiny")
        build(root)
        yield root


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RELAY_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def relay_script() -> Path:
    """The installed `relay` console script next to the running Python."""
    script = Path(sys.executable).parent / "relay"
    if not script.exists():
        pytest.skip("relay is not installed as a console script in this environment")
    return script
