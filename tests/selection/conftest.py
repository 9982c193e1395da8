"""Fixtures for the selection tests: the real-app layout of `app_helpers`, in a git work tree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "bundle"))
# the acceptance test (test_issue9_acceptance.py) reuses the lock and runtime tests' helpers
sys.path.append(str(Path(__file__).resolve().parent.parent / "lock"))
sys.path.append(str(Path(__file__).resolve().parent.parent / "runtime"))

from app_helpers import commit_all, git, make_real_app
from bundle_helpers import cache_dir, wheelhouse  # noqa: F401  (fixtures)


@pytest.fixture
def real_app(tmp_path: Path, wheelhouse: dict[str, Path], cache_dir: Path) -> Path:  # noqa: F811
    """The app in a git work tree (init, everything not ignored committed), secrets still in it."""
    root = make_real_app(tmp_path / "realapp", wheelhouse)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root
