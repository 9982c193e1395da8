"""The no-op fast path: skip a build whose inputs and outputs have not been touched since.

Like make, it compares file metadata (size, mtime, ctime, inode, mode) of every
input and of every output in dist/ (the files `builder.dist` lists). The inputs
are exactly what decides a build: the config; the files each bundle ships, as
its selection lists them (so what is never shipped - `dist/`, `.git`, `.venv`,
excluded or git-ignored files, docs and tests of a `source = "."` project - is
never walked and never counts); every file that decides a lock and the lock
itself; relay's version and SOURCE_DATE_EPOCH; and of git's view only what a
manifest records: HEAD's commit and, per bundle, whether a shipped file is
dirty. When nothing was touched, the last build's result is reported again
without loading the build pipeline; when anything was, the build runs as usual
and decides from content hashes, so a `touch` alone still rebuilds nothing.

ctime and the inode catch a file replaced or edited with its old mtime put back
(`cp -p`, `rsync -a`, tar). A file modified within `RACY_NS` of the fingerprint
could be edited again within the same timestamp tick without its metadata
changing (git's "racy clean" problem), so such files also count by content: the
fingerprint records when it was taken and a later check hashes the same files.
This module loads nothing of the build pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

from builder import __version__, dist
from builder.bundle.gitinfo import GitView, git_view
from builder.bundle.selection import Selection, select_function, select_layer
from builder.config import Project
from builder.lock.targets import lock_targets

STAMP_FILE = ".relay-build.json"


# Files whose mtime or ctime is this close to the fingerprint's time (or later) also count by content.
# Well above a filesystem timestamp's granularity (a clock tick; 2 s on FAT) and small clock skews.
RACY_NS = 3_000_000_000


def input_fingerprint(project: Project, names: tuple[str, ...], import_check: bool, *, taken: int | None = None) -> str:
    """`<time>:<digest>` of every input file's metadata, with what else decides a build's outcome.

    `taken` (ns since the epoch) is when an earlier fingerprint was taken, to
    recompute that one (the same files count by content); default now.
    """
    taken = time.time_ns() if taken is None else taken
    digest = hashlib.sha256()
    git = git_view(project.root)  # what the selection leaves out and a manifest's git fields come from
    head = [__version__, os.environ.get("SOURCE_DATE_EPOCH", ""), sorted(names), import_check, git.present, git.commit]
    digest.update(json.dumps(head).encode())
    paths: list[Path] = [project.config_file]
    # What every bundle ships: its selection (read without opening files; a build scans them for secrets).
    for selection in shipped(project, git):
        info = git.info_for(p.path for p in selection.files)  # the manifest's git provenance
        digest.update(json.dumps([selection.kind, selection.name, info.dirty if info else None,
                                  sorted(s.path for s in selection.secrets)]).encode())  # a build would refuse these
        paths += [p.source for p in selection.files]
    # Every file that decides a lock (requirements, files they include, pins), and the lock.
    for target in lock_targets(project):
        paths += [*target.inputs, target.lock]
    racy_after = taken - RACY_NS
    for path in paths:
        _add_tree(digest, path, racy_after)
    return f"{taken}:{digest.hexdigest()}"


def shipped(project: Project, git: GitView) -> list[Selection]:
    """What every function and layer ships, as the build selects it (no secret scan: files are not opened)."""
    return [*(select_function(project, fn, git, scan=False) for fn in project.functions.values()),
            *(select_layer(project, layer, git, scan=False) for layer in project.layers.values())]


def output_fingerprint(project: Project) -> str:
    """Size, mtime and mode of the files the last build wrote to dist/ (as `builder.dist` lists them)."""
    digest = hashlib.sha256()
    for path in dist.output_files(project.dist_dir):
        _add_tree(digest, path)
    return digest.hexdigest()


def read_fresh(project: Project, names: tuple[str, ...], import_check: bool) -> dict | None:
    """The last build's result when nothing it depends on was touched since, else None."""
    try:
        stamp = json.loads((project.dist_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    inputs = stamp.get("inputs")
    taken = _taken(inputs)
    if taken is None or inputs != input_fingerprint(project, names, import_check, taken=taken):
        return None
    if stamp.get("outputs") != output_fingerprint(project):
        return None
    return stamp.get("result")


def unchanged(doc: dict) -> dict:
    """The last build's document, reported again with nothing rebuilt."""
    bundles = [{**b, "status": "unchanged", "seconds": 0.0} for b in doc["bundles"]]
    return {**doc, "bundles": bundles, "nothing_changed": True, "seconds": 0.0}


def write(project: Project, inputs: str, result: dict) -> None:
    """Remember a build; `inputs` is the fingerprint taken before it started (edits during it count)."""
    from builder.fsutil import atomic_write_text  # loads zipfile: written after a build, never on the no-op path

    doc = {"inputs": inputs, "outputs": output_fingerprint(project), "result": result}
    atomic_write_text(project.dist_dir / STAMP_FILE, json.dumps(doc, sort_keys=True))


def _taken(inputs: object) -> int | None:
    """When a stored input fingerprint was taken; None when it is not one."""
    if not isinstance(inputs, str) or inputs.count(":") != 1:
        return None
    taken, _ = inputs.split(":")
    return int(taken) if taken.isdigit() else None


def _add_tree(digest, path: Path, racy_after: int | None = None) -> None:
    """Metadata of `path` (and of everything under it, for a folder); a racy file's content too."""
    try:
        info = path.lstat()
    except OSError:
        digest.update(f"missing {path}\n".encode())
        return
    digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{info.st_ino}\0"
                  f"{info.st_dev}\0{info.st_mode}\n".encode())
    if stat.S_ISDIR(info.st_mode):
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            _add_tree(digest, Path(entry.path), racy_after)
    elif racy_after is not None and stat.S_ISREG(info.st_mode) and max(info.st_mtime_ns, info.st_ctime_ns) >= racy_after:
        digest.update(_content(path).encode())


def _content(path: Path) -> str:
    content = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                content.update(block)
    except OSError as exc:
        return f"unreadable {exc.errno}"
    return content.hexdigest()
