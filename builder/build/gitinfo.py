"""The git commit a build came from, if the project is in a git work tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.models import GitInfo


def git_info(root: Path) -> GitInfo | None:
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None or len(commit) != 40:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return GitInfo(commit=commit, dirty=bool(status))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
