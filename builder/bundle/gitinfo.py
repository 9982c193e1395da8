"""What git knows about the project: HEAD, what differs from it, and what it ignores.

Asked once per build (three git calls, from the project root): the selection
leaves out what git ignores, and a bundle's manifest is dirty when any file it
ships is untracked, ignored or differs from HEAD - not only when some tracked
file somewhere changed. Paths are relative to the project root, "/" separated.
Without git, or outside a work tree, the view is absent and says why.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import attrs

from builder.models import GitInfo

_TIMEOUT = 30


@attrs.frozen
class GitView:
    """git's view of the files under the project root (absent: `note` says why)."""

    present: bool
    note: str = ""
    commit: str | None = None  # None before the first commit
    changed: frozenset[str] = frozenset()  # tracked, differing from HEAD (staged or not)
    untracked: frozenset[str] = frozenset()  # neither tracked nor ignored
    ignored_files: frozenset[str] = frozenset()
    ignored_dirs: frozenset[str] = frozenset()  # no trailing "/"

    def ignores(self, rel: str) -> bool:
        """Whether git ignores the project-relative path `rel` (a file or folder), or a folder holding it."""
        if not self.present:
            return False
        if rel in self.ignored_files or rel in self.ignored_dirs:
            return True
        parts = rel.split("/")
        return any("/".join(parts[:i]) in self.ignored_dirs for i in range(1, len(parts)))

    def info_for(self, shipped: Iterable[str]) -> GitInfo | None:
        """HEAD's commit, dirty when any shipped (project-relative) file is not exactly as HEAD has it."""
        if not self.present or self.commit is None:
            return None
        dirty = any(rel in self.changed or rel in self.untracked or self.ignores(rel) for rel in shipped)
        return GitInfo(commit=self.commit, dirty=dirty)

    def fingerprint(self) -> str:
        """Changes whenever HEAD, a tracked change or the untracked files change (for the no-op stamp)."""
        text = "\0".join([str(self.present), self.commit or "", *sorted(self.changed), "|", *sorted(self.untracked)])
        return hashlib.sha256(text.encode()).hexdigest()


def git_view(root: Path) -> GitView:
    """Ask git about `root` (the project root); absent when git is missing or `root` is not in a work tree."""
    head = _git(root, "rev-parse", "--show-prefix", "HEAD")
    if head is None:
        head = _git(root, "rev-parse", "--show-prefix")  # a work tree without commits yet
        if head is None:
            return GitView(present=False, note=_absent_reason(root))
    lines = head.splitlines()
    prefix = lines[0].strip() if lines else ""
    commit = lines[1].strip() if len(lines) > 1 and len(lines[1].strip()) == 40 else None
    status = _git(root, "status", "--porcelain=v2", "-z", "--untracked-files=all", "--", ".")
    ignored = _git(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory")
    if status is None or ignored is None:
        return GitView(present=False, note="git status failed here")
    changed, untracked = _parse_status(status, prefix)
    files = {p for p in ignored.split("\0") if p and not p.endswith("/")}
    dirs = {p.rstrip("/") for p in ignored.split("\0") if p.endswith("/")}
    return GitView(present=True, commit=commit, changed=frozenset(changed), untracked=frozenset(untracked),
                   ignored_files=frozenset(files), ignored_dirs=frozenset(dirs))


# Variables that move git's files elsewhere than `git_inputs` looks.
_RELOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_CONFIG",
               "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_CEILING_DIRECTORIES")
_PER_FOLDER = (".gitignore", ".gitattributes")


def git_inputs(root: Path, view: GitView, folders: Iterable[Path]) -> list[Path] | None:
    """Every file whose change can change what `git_view(root)` says of the files in `folders` (listed folders
    under `root`): HEAD and the branch it names, the index, config and ignore files, the ignore files of every
    folder from the work tree's top down. Missing ones count (creating one is a change). Read after `git_view`
    (git status may refresh the index). None when git's files are not where this looks (GIT_DIR and the like).
    """
    if any(name in os.environ for name in _RELOCATING):
        return None
    root = root.resolve()
    top = next((folder for folder in (root, *root.parents) if (folder / ".git").exists()), None)
    # Without git, or above the top: a .git created in any of these folders would change the view.
    above = [f for f in (root, *root.parents) if top is None or top in f.parents]
    paths = [folder / ".git" for folder in above]
    if top is None:
        return paths
    if not view.present:
        return None  # a work tree git did not answer for (a broken .git, no git installed): unknown
    git_dir = _git_dir(top)
    if git_dir is None:
        return None
    common = _common_dir(git_dir)
    paths += [git_dir / "HEAD", git_dir / "index", common / "packed-refs", common / "config",
              common / "info" / "exclude", common / "info" / "attributes"]
    head = _read(git_dir / "HEAD")
    if head.startswith("ref: "):
        paths.append(common / head[5:].strip())
    for folder in [top, *[f for f in root.parents if top in f.parents], root, *folders]:
        paths += [folder / name for name in _PER_FOLDER]
    paths += _home_config()
    listed = _git(top, "config", "--list", "--show-origin", "-z")
    if listed is None:
        return None
    records = listed.split("\0")
    for origin, setting in zip(records[::2], records[1::2], strict=False):  # every config file git read
        if origin.startswith("file:"):
            paths.append(top / origin[5:])
        key, _, value = setting.partition("\n")
        if key in ("core.excludesfile", "core.attributesfile") and value:
            paths.append(top / os.path.expanduser(value))
    return paths


def _home_config() -> list[Path]:
    """Where git looks for the user's and the system's config and ignore files by default."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path.home() / ".gitconfig", *(Path(xdg) / "git" / name for name in ("config", "ignore", "attributes")),
            Path("/etc/gitconfig")]


def _git_dir(top: Path) -> Path | None:
    """The git folder of the work tree at `top`: `.git`, or where a worktree's or submodule's `.git` file points."""
    dot_git = top / ".git"
    if dot_git.is_dir():
        return dot_git
    pointer = _read(dot_git)
    if not pointer.startswith("gitdir: "):
        return None
    return (top / pointer[8:].strip()).resolve()


def _common_dir(git_dir: Path) -> Path:
    """Where refs, config and info/ live: a linked worktree's `commondir`, else the git folder itself."""
    common = _read(git_dir / "commondir").strip()
    return (git_dir / common).resolve() if common else git_dir


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _parse_status(out: str, prefix: str) -> tuple[set[str], set[str]]:
    # porcelain v2 paths are relative to the repository's top; ours to the project root.
    changed: set[str] = set()
    untracked: set[str] = set()
    records = iter(out.split("\0"))
    for record in records:
        if not record:
            continue
        kind = record[0]
        if kind == "?":
            untracked.add(record[2:])
        elif kind == "1":
            changed.add(record.split(" ", 8)[8])
        elif kind == "2":
            changed.add(record.split(" ", 9)[9])
            next(records, None)  # the rename's original path
        elif kind == "u":
            changed.add(record.split(" ", 10)[10])
    return _under(changed, prefix), _under(untracked, prefix)


def _under(paths: set[str], prefix: str) -> set[str]:
    return {p.removeprefix(prefix) for p in paths if p.startswith(prefix)}


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _absent_reason(root: Path) -> str:
    try:
        subprocess.run(["git", "--version"], capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "git is not installed: files git would ignore are not left out"
    return f"{root} is not in a git work tree: no .gitignore rules applied"
