"""The git commit a build came from, if the project is in a git work tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.models import GitInfo


def git_info(root: Path) -> GitInfo | None:
    """HEAD's commit and whether tracked files under `root` differ from it (one git call)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain=v2", "--branch", "--untracked-files=no", "--", "."],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    commit, dirty = None, False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ").strip()
        elif not line.startswith("#"):
            dirty = True
    if commit is None or len(commit) != 40:  # "(initial)": no commit yet
        return None
    return GitInfo(commit=commit, dirty=dirty)
