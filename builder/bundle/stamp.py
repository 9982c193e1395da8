"""The no-op fast path: skip a build whose inputs and outputs have not been touched since.

Like make, it compares file sizes, modification times and modes, of every
input (the config; the files each bundle ships, as its selection lists them,
so `dist/`, `.git` or `.venv` are never walked; every file that decides a lock
and the lock itself) and of every output in dist/ (the files `builder.dist`
lists), plus relay's version, SOURCE_DATE_EPOCH and git's view of the project.
When nothing was touched, the last build's result is reported again without
loading the build pipeline; when anything was, the build runs as usual and
decides from content hashes, so a `touch` alone still rebuilds nothing. This
module loads nothing of the build pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from builder import __version__, dist
from builder.bundle.gitinfo import git_view
from builder.bundle.selection import select_function, select_layer
from builder.config import Project
from builder.lock.targets import lock_targets

STAMP_FILE = ".relay-build.json"


def input_fingerprint(project: Project, names: tuple[str, ...], import_check: bool) -> str:
    """Size, mtime and mode of every input file, with what else decides a build's outcome."""
    digest = hashlib.sha256()
    git = git_view(project.root)  # what the selection leaves out and a manifest's git fields come from
    head = [__version__, os.environ.get("SOURCE_DATE_EPOCH", ""), sorted(names), import_check, git.fingerprint()]
    digest.update(json.dumps(head).encode())
    paths: list[Path] = [project.config_file]
    # What every bundle ships: its selection (read without opening files; a build scans them for secrets).
    selections = [*(select_function(project, fn, git, scan=False) for fn in project.functions.values()),
                  *(select_layer(project, layer, git, scan=False) for layer in project.layers.values())]
    for selection in selections:
        digest.update(f"{selection.kind} {selection.name}\n".encode())
        paths += [p.source for p in selection.files]
    # Every file that decides a lock (requirements, files they include, pins), and the lock.
    for target in lock_targets(project):
        paths += [*target.inputs, target.lock]
    for path in paths:
        _add_tree(digest, path)
    return digest.hexdigest()


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
    if stamp.get("inputs") != input_fingerprint(project, names, import_check):
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
    doc = {"inputs": inputs, "outputs": output_fingerprint(project), "result": result}
    path = project.dist_dir / STAMP_FILE
    staged = path.with_name(f".{STAMP_FILE}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    os.replace(staged, path)


def _add_tree(digest, path: Path) -> None:
    try:
        info = path.lstat()
    except OSError:
        digest.update(f"missing {path}\n".encode())
        return
    _add_stat(digest, str(path), info)
    if path.is_dir() and not path.is_symlink():
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            _add_tree(digest, Path(entry.path))


def _add_stat(digest, name: str, info: os.stat_result) -> None:
    digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_mode}\n".encode())
