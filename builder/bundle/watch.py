"""Paths and their metadata as a build read them, and whether any was touched since (make's question).

A watch entry is one path's `lstat` (size, mtime, ctime, inode, device,
mode), or "missing". A folder's entry stands for its listing: adding,
removing or renaming a name in it changes its mtime. A path modified within
`RACY_NS` of when the watch was taken could change again within the same
timestamp tick with every stat field the same (git's "racy clean" problem),
so such an entry also records its content (a file's sha256, a folder's sorted
names) and a later check compares that too. ctime and the inode catch a file
replaced or edited with its old mtime put back (`cp -p`, `rsync -a`, tar).

Entries are plain JSON lists so the no-op stamp can hold them; this module
imports only the standard library (`relay build` answers a no-op with it
before loading anything else).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable

# Paths whose mtime or ctime is this close to the watch's time (or later) also count by content. Well above a
# filesystem timestamp's granularity (a clock tick; 2 s on FAT) and small clock skews.
RACY_NS = 3_000_000_000

# [path, size, mtime_ns, ctime_ns, ino, dev, mode, content | None]; [path, "sha256", content] by content only;
# [path] when missing.
Entry = list
_BY_CONTENT = "sha256"


def take(paths: Iterable[str], taken: int, *, racy: bool = True, by_content: bool = False) -> list[Entry]:
    """An entry per distinct path, in the order given (a folder's entry is its own, not its files').

    `racy=False`: never record content (files relay itself just wrote, such as its zips). `by_content`: only the
    content counts (files other programs rewrite unchanged, such as git's index).
    """
    seen: set[str] = set()
    entries = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            entries.append(_by_content(path) if by_content else
                           _entry(path, taken - RACY_NS, content=None if racy else False))
    return entries


def touched(entries: list[Entry]) -> bool:
    """Whether any path differs from its entry (by content too where the entry recorded it); a malformed one counts."""
    try:
        return any(_again(entry) != entry for entry in entries)
    except (TypeError, IndexError):
        return True


def _again(entry: Entry) -> Entry:
    """`entry`'s path as it is now, noted the way `entry` was."""
    if len(entry) == 3 and entry[1] == _BY_CONTENT:
        return _by_content(entry[0])
    return _entry(entry[0], 0, content=len(entry) == 8 and entry[7] is not None)


def _by_content(path: str) -> Entry:
    try:
        info = os.stat(path)
    except OSError:
        return [path]
    return [path, _BY_CONTENT, _content(path, info.st_mode)]


def folders(entries: list[Entry]) -> list[str]:
    """The paths of `entries` that were folders when noted."""
    return [entry[0] for entry in entries if len(entry) == 8 and stat.S_ISDIR(entry[6])]


def tree(path: str) -> list[str]:
    """`path` and, for a folder, every folder and file under it (an input that is a whole folder)."""
    paths = [path]
    if os.path.isdir(path) and not os.path.islink(path):
        for folder, folders, files in os.walk(path):
            folders.sort()
            paths += [os.path.join(folder, name) for name in (*folders, *sorted(files))]
    return paths


def folders_under(path: str) -> list[str]:
    """`path` and every folder under it: whose listings decide what git reports for a folder it ignores."""
    paths = [path]
    for folder, folders, _files in os.walk(path):
        folders.sort()
        paths += [os.path.join(folder, name) for name in folders]
    return paths


def _entry(path: str, racy_after: int, *, content: bool | None = None) -> Entry:
    """`path`'s entry; its content is recorded when it is racy (`content=None`), or as `content` says."""
    try:
        info = os.lstat(path)
    except OSError:
        return [path]
    if content is None:
        content = max(info.st_mtime_ns, info.st_ctime_ns) >= racy_after
    return [path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, info.st_mode,
            _content(path, info.st_mode) if content else None]


def _content(path: str, mode: int) -> str:
    if stat.S_ISDIR(mode):
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            return f"unlistable {exc.errno}"
        return hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()
    if not stat.S_ISREG(mode):
        return ""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        return f"unreadable {exc.errno}"
    return digest.hexdigest()
