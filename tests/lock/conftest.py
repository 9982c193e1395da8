"""Fixtures for lock tests: tiny relay projects in tmp_path, one persistent tool cache.

relay keeps a pip-tools venv per Python version in its user cache. The tests
point RELAY_CACHE_DIR at one folder that outlives the session (unless the
caller set one), so the venv is made once per machine, not once per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_CACHE = Path(os.environ.get("RELAY_TEST_CACHE", "/tmp/relay-test-cache"))


@pytest.fixture(scope="session", autouse=True)
def relay_cache_dir() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("RELAY_CACHE_DIR"):
            patch.setenv("RELAY_CACHE_DIR", str(TEST_CACHE))
        yield Path(os.environ["RELAY_CACHE_DIR"])
